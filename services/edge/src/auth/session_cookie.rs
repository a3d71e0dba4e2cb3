//! The session cookies of browsers (`POST /auth/session`, routes/session.rs): the access token
//! and the refresh token of an ordinary login, each in its own `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` outside development), `Path=/` so both `/x` and `/api/x` receive them.
//! Scripts of the page never see the tokens; the edge reads them back here. They are the same
//! tokens as a bearer login's, so verification, rotation, revocation and audit are shared.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use gathering_core::claims::AccessClaims;
use gathering_proto::v1 as pb;

use super::csrf;
use crate::config::Config;
use crate::middleware::ClientMeta;
use crate::state::AppState;

/// The access token (a JWT, lifetime of an access token).
pub const ACCESS_COOKIE: &str = "gathering_access";
/// The refresh token (rotated on every refresh, lifetime of a refresh token).
pub const REFRESH_COOKIE: &str = "gathering_refresh";

/// Longest cookie value read: a JWT of this edge is well under 2 KiB.
const MAX_VALUE: usize = 4096;

/// The value of cookie `name` in the request's `Cookie` headers, if present and well formed
/// (token characters only: ours never contain anything else).
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE && v.bytes().all(is_token_byte))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

/// The access token of the session cookie.
pub fn access_token(headers: &HeaderMap) -> Option<&str> {
    read(headers, ACCESS_COOKIE)
}

/// The refresh token of the session cookie.
pub fn refresh_token(headers: &HeaderMap) -> Option<&str> {
    read(headers, REFRESH_COOKIE)
}

/// Whether the request carries any session cookie.
pub fn present(headers: &HeaderMap) -> bool {
    access_token(headers).is_some() || refresh_token(headers).is_some()
}

/// A `Set-Cookie` value that stores `value` for `max_age` seconds.
pub fn set(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    if value.is_empty() || !value.bytes().all(is_token_byte) {
        return None;
    }
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.max(0)
    ))
    .ok()
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds the `Set-Cookie` headers of a session holding `pair`.
pub fn append(headers: &mut HeaderMap, pair: &pb::TokenPair, secure: bool) {
    let cookies = [
        set(ACCESS_COOKIE, &pair.access_token, pair.expires_in, secure),
        set(
            REFRESH_COOKIE,
            &pair.refresh_token,
            pair.refresh_expires_in,
            secure,
        ),
    ];
    for c in cookies.into_iter().flatten() {
        headers.append(SET_COOKIE, c);
    }
}

/// For a browser navigation (no `Authorization` header) whose access cookie is missing or no
/// longer valid but whose refresh cookie is: a rotated pair and the new token's claims. Any
/// failure (expired, revoked or reused refresh token, auth unreachable) is `None`, and the
/// request goes on to the login page as without a session.
pub async fn resume_navigation(
    req: &ServiceRequest,
    state: &AppState,
) -> Option<(AccessClaims, pb::TokenPair)> {
    let headers = req.headers();
    if headers.contains_key(AUTHORIZATION)
        || !crate::login::is_browser_navigation(req.method(), headers)
    {
        return None;
    }
    let refresh = refresh_token(headers)?;
    if let Some(access) = access_token(headers)
        && state.verifier.verify(access).await.is_ok()
    {
        return None;
    }
    let meta = ClientMeta::of(req, &state.config.trusted_proxies);
    let pair = state
        .auth
        .clone()
        .refresh(pb::RefreshRequest {
            refresh_token: refresh.to_owned(),
            client: Some(meta.to_proto()),
        })
        .await
        .ok()?
        .into_inner();
    let claims = state.verifier.verify(&pair.access_token).await.ok()?;
    Some((claims, pair))
}

/// The token a WebSocket upgrade is authenticated with: the `?token=` of the contract, or else
/// the session cookie, only from an allowed origin (cross-site WebSocket hijacking: a page
/// elsewhere could open the socket with the user's cookie, and `SameSite` does not cover every
/// same-site neighbour).
pub fn ws_token<'a>(
    headers: &'a HeaderMap,
    config: &Config,
    token: Option<&'a str>,
) -> Option<&'a str> {
    match token {
        Some(t) => Some(t),
        None => access_token(headers).filter(|_| csrf::ws_origin_allowed(headers, config)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_cookies_only() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("other=1; gathering_access=a.b.c ; gathering_refresh=grt_x"),
        );
        assert_eq!(access_token(&h), Some("a.b.c"));
        assert_eq!(refresh_token(&h), Some("grt_x"));
        let mut bad = HeaderMap::new();
        bad.append(COOKIE, HeaderValue::from_static("gathering_access=a<b"));
        assert_eq!(access_token(&bad), None);
        assert!(!present(&bad));
    }

    #[test]
    fn cookie_attributes() {
        let v = set(ACCESS_COOKIE, "a.b", 900, true).unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "gathering_access=a.b; Path=/; Max-Age=900; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(set(ACCESS_COOKIE, "a;b", 1, false).is_none());
        let c = clear(REFRESH_COOKIE, false);
        assert!(c.to_str().unwrap().contains("Max-Age=0"));
    }
}
