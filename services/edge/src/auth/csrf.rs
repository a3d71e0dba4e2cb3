//! The CSRF rule for cookie sessions. A browser attaches the session cookie to whatever request
//! it makes, so a request authenticated by cookie must also prove it comes from a page of the
//! edge's own origin (or of an allowed dashboard origin): its `Origin` is the edge's own
//! (`Host` of the request, or `GATHERING_PUBLIC_URL`) or one of `CORS_ORIGINS`, or the browser
//! says `Sec-Fetch-Site: same-origin`. Pages can set neither header themselves. `SameSite=Strict`
//! already keeps the cookie off cross-site requests; this also covers same-site neighbours
//! (another port or subdomain) and browsers without SameSite. Bearer requests are not
//! concerned: a browser never attaches an `Authorization` header on its own.

use actix_web::http::Method;
use actix_web::http::header::{HOST, HeaderMap, ORIGIN};

use crate::config::Config;

/// Requests that change nothing and need no proof of origin (WebSocket upgrades are GETs but
/// are checked: see [`ws_origin_allowed`]).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request comes from a page the edge trusts. A missing `Origin` (and no
/// `Sec-Fetch-Site: same-origin`) is not trusted: browsers send `Origin` on every non-GET
/// request and on WebSocket upgrades.
pub fn origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"))
    {
        return true;
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin = origin.trim();
    if origin.eq_ignore_ascii_case("null") {
        return false;
    }
    if config
        .cors_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    if config
        .browser
        .public_origin
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // The request's own origin: the authority of `Origin` is the `Host` the browser sent
    // (a page cannot forge `Host`; behind a proxy that rewrites it, set GATHERING_PUBLIC_URL).
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if !a.is_empty() && a.eq_ignore_ascii_case(h.trim()))
}

/// Cross-site WebSocket hijacking: an upgrade authenticated by cookie must come from an
/// allowed origin, like a state-changing request.
pub fn ws_origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
    origin_allowed(headers, config)
}

/// For requests that carry no session yet (the login itself): a browser's cross-site form
/// must not log its user into someone else's account, so an `Origin` that is present must be
/// allowed; clients without one (scripts, curl) are not browsers and pass.
pub fn login_origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
    let cross_site_fetch = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if headers.get(ORIGIN).is_none() && !cross_site_fetch {
        return true;
    }
    origin_allowed(headers, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use std::collections::HashMap;

    fn config() -> Config {
        let vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), "postgres://u@h/d".into()),
            ("CORS_ORIGINS".into(), "https://dash.example.com".into()),
            (
                "GATHERING_PUBLIC_URL".into(),
                "https://public.example.com/".into(),
            ),
        ]);
        Config::from_vars(&vars).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                actix_web::http::header::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            );
        }
        h
    }

    #[test]
    fn origins() {
        let c = config();
        let own = headers(&[("host", "edge:8000"), ("origin", "http://edge:8000")]);
        assert!(origin_allowed(&own, &c));
        let cors = headers(&[
            ("host", "edge:8000"),
            ("origin", "https://dash.example.com"),
        ]);
        assert!(origin_allowed(&cors, &c));
        let public = headers(&[
            ("host", "internal"),
            ("origin", "https://public.example.com"),
        ]);
        assert!(origin_allowed(&public, &c));
        let fetch_site = headers(&[("host", "edge"), ("sec-fetch-site", "same-origin")]);
        assert!(origin_allowed(&fetch_site, &c));
        for evil in [
            headers(&[("host", "edge:8000"), ("origin", "http://evil.example")]),
            headers(&[("host", "edge:8000"), ("origin", "http://edge:8001")]),
            headers(&[("host", "edge:8000"), ("origin", "null")]),
            headers(&[("host", "edge:8000")]),
            headers(&[("host", "edge"), ("sec-fetch-site", "same-site")]),
            headers(&[("host", "edge"), ("origin", "http://edge.evil.example")]),
        ] {
            assert!(!origin_allowed(&evil, &c), "{evil:?}");
        }
        assert!(login_origin_allowed(&headers(&[("host", "edge")]), &c));
        assert!(!login_origin_allowed(
            &headers(&[("host", "edge"), ("origin", "http://evil.example")]),
            &c
        ));
        assert!(!login_origin_allowed(
            &headers(&[("host", "edge"), ("sec-fetch-site", "cross-site")]),
            &c
        ));
    }
}
