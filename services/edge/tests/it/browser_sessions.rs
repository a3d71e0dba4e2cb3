//! Cookie sessions for browsers (`/auth/session`), the CSRF rule, cookies on WebSockets, and the
//! `/login` page with its redirects (issue 17, part 3); the login page is in login_page.rs.

use std::time::Duration;

use gathering_testkit::TestDb;
use gathering_testkit::ws::{self, Next};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{eventually, start_auth, start_edge};

pub const PW: &str = "correct horse battery";
pub const EVIL: &str = "http://evil.example";

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    let _ = gathering_testkit::http::client();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `name=value` of the `Set-Cookie` headers, and the whole header lines.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).iter().find_map(|line| {
        let pair = line.split(';').next()?;
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Logs in through `POST /auth/session`; returns the `Cookie` header of the session.
pub async fn cookie_login(base: &str, email: &str) -> (String, String) {
    let r = client()
        .post(format!("{base}/auth/session"))
        .json(&json!({"email": email, "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let access = cookie_value(r.headers(), "gathering_access").unwrap();
    let refresh = cookie_value(r.headers(), "gathering_refresh").unwrap();
    (access, refresh)
}

pub fn jar(access: &str, refresh: &str) -> String {
    format!("gathering_access={access}; gathering_refresh={refresh}")
}

fn origin(base: &str) -> String {
    base.to_owned()
}

async fn body(r: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn cookie_login_session_refresh_rotation_and_logout() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let base = edge.base.clone();
    assert_eq!(
        api.register("cookie@example.com", PW).await.status,
        StatusCode::CREATED
    );
    let c = client();

    // Login: the user in the body, the tokens only in HttpOnly, SameSite=Strict cookies
    // (development: no `Secure`, browsers would drop it over plain HTTP).
    let r = c
        .post(format!("{base}/api/auth/session"))
        .json(&json!({"email": "cookie@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    let (status, headers, login) = body(r).await;
    assert_eq!(status, StatusCode::OK, "{login:?}");
    assert_eq!(login["user"]["email"], "cookie@example.com");
    assert_eq!(login["expires_in"], 900);
    assert!(login.get("access_token").is_none() && login.get("refresh_token").is_none());
    let lines = set_cookies(&headers);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(
            line.contains("; HttpOnly") && line.contains("; SameSite=Strict"),
            "{line}"
        );
        assert!(
            line.contains("; Path=/") && !line.contains("Secure"),
            "{line}"
        );
    }
    let access1 = cookie_value(&headers, "gathering_access").unwrap();
    let refresh1 = cookie_value(&headers, "gathering_refresh").unwrap();

    // The cookie authenticates REST calls, prefixed or not.
    for path in ["/api/agents", "/agents", "/auth/session"] {
        let r = c
            .get(format!("{base}{path}"))
            .header("cookie", jar(&access1, &refresh1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let me = c
        .get(format!("{base}/auth/session"))
        .header("cookie", jar(&access1, &refresh1))
        .send()
        .await
        .unwrap();
    assert_eq!(body(me).await.2["user"]["email"], "cookie@example.com");

    // Refresh through the cookie rotates both tokens.
    let r = c
        .post(format!("{base}/auth/session/refresh"))
        .header("cookie", jar(&access1, &refresh1))
        .header("origin", origin(&base))
        .send()
        .await
        .unwrap();
    let (status, headers, _) = body(r).await;
    assert_eq!(status, StatusCode::OK);
    let access2 = cookie_value(&headers, "gathering_access").unwrap();
    let refresh2 = cookie_value(&headers, "gathering_refresh").unwrap();
    assert_ne!(refresh1, refresh2);
    assert_ne!(access1, access2);
    // Refresh is state-changing: refused from another origin, and without any origin.
    for origin in [Some(EVIL), None] {
        let mut req = c
            .post(format!("{base}/auth/session/refresh"))
            .header("cookie", jar(&access2, &refresh2));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    }

    // Logout: revokes, clears the cookies; the old cookies are refused afterwards.
    let r = c
        .delete(format!("{base}/auth/session"))
        .header("cookie", jar(&access2, &refresh2))
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "logout is CSRF-checked too"
    );
    let r = c
        .delete(format!("{base}/auth/session"))
        .header("cookie", jar(&access2, &refresh2))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    let (status, headers, _) = body(r).await;
    assert_eq!(status, StatusCode::OK);
    let cleared = set_cookies(&headers);
    assert_eq!(cleared.len(), 2);
    assert!(
        cleared.iter().all(|l| l.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let r = c
        .get(format!("{base}/api/agents"))
        .header("cookie", jar(&access2, &refresh2))
        .send()
        .await
        .unwrap();
    let (status, headers, detail) = body(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked access cookie");
    assert_eq!(detail["detail"], "Invalid or expired token");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let r = c
        .post(format!("{base}/auth/session/refresh"))
        .header("cookie", jar(&access2, &refresh2))
        .header("origin", origin(&base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "revoked refresh cookie"
    );

    // Same audit as a bearer login.
    let types = crate::support::audit_types(&db).await;
    assert!(types.contains(&"auth_success".to_owned()), "{types:?}");
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn a_reused_refresh_cookie_ends_the_family_and_wrong_passwords_are_refused() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let base = edge.base.clone();
    edge.api().register("reuse@example.com", PW).await;
    let c = client();
    let bad = c
        .post(format!("{base}/auth/session"))
        .json(&json!({"email": "reuse@example.com", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    let (status, headers, detail) = body(bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(detail["detail"], "Incorrect email or password");
    assert!(set_cookies(&headers).is_empty());

    let (access1, refresh1) = cookie_login(&base, "reuse@example.com").await;
    let refresh = |a: String, r: String| {
        let c = c.clone();
        let base = base.clone();
        async move {
            c.post(format!("{base}/auth/session/refresh"))
                .header("cookie", jar(&a, &r))
                .header("origin", base.clone())
                .send()
                .await
                .unwrap()
        }
    };
    let r = refresh(access1.clone(), refresh1.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let access2 = cookie_value(r.headers(), "gathering_access").unwrap();
    // The rotated refresh cookie comes back (stolen): refused, cookies cleared, and the whole
    // family is revoked, the fresh access cookie included.
    let reuse = refresh(access1.clone(), refresh1.clone()).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    assert!(
        set_cookies(reuse.headers())
            .iter()
            .all(|l| l.contains("Max-Age=0"))
    );
    let refused = eventually(3, || {
        let c = c.clone();
        let url = format!("{base}/api/agents");
        let cookie = format!("gathering_access={access2}");
        async move {
            c.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                == StatusCode::UNAUTHORIZED
        }
    })
    .await;
    assert!(refused);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn csrf_rule_for_cookie_requests_and_bearer_unchanged() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let base = edge.base.clone();
    let (bearer, _) = edge.api().user("csrf@example.com", PW).await;
    let (access, refresh) = cookie_login(&base, "csrf@example.com").await;
    let c = client();
    // A state-changing call with an invalid body: 422 once past the CSRF check, 403 before.
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = c.post(format!("{base}/api/projects")).json(&json!({}));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { body(req.send().await.unwrap()).await }
    };
    let cookie = jar(&access, &refresh);
    let host = base.trim_start_matches("http://").to_owned();
    let cases: Vec<(Vec<(&str, String)>, StatusCode)> = vec![
        (
            vec![("cookie", cookie.clone()), ("origin", EVIL.into())],
            StatusCode::FORBIDDEN,
        ),
        (vec![("cookie", cookie.clone())], StatusCode::FORBIDDEN),
        (
            vec![("cookie", cookie.clone()), ("origin", "null".into())],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                ("cookie", cookie.clone()),
                ("sec-fetch-site", "cross-site".into()),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                ("cookie", cookie.clone()),
                ("origin", format!("http://{host}")),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![
                ("cookie", cookie.clone()),
                ("sec-fetch-site", "same-origin".into()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // One of CORS_ORIGINS (the development defaults).
        (
            vec![
                ("cookie", cookie.clone()),
                ("origin", "http://localhost:5173".into()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // Bearer requests are not concerned, whatever their origin.
        (
            vec![
                ("authorization", format!("Bearer {bearer}")),
                ("origin", EVIL.into()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![
                ("authorization", format!("Bearer {bearer}")),
                ("cookie", cookie.clone()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (headers, want) in cases {
        let shown = format!("{:?}", headers.iter().map(|h| h.0).collect::<Vec<_>>());
        let (status, _, detail) = post(headers).await;
        assert_eq!(status, want, "{shown}: {detail:?}");
        if want == StatusCode::FORBIDDEN {
            assert_eq!(
                detail["detail"],
                "Cross-site request refused: Origin is not allowed"
            );
        }
    }
    // Reads by cookie need no origin.
    let r = c
        .get(format!("{base}/api/agents"))
        .header("cookie", cookie.clone())
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A cross-site login (login CSRF) is refused; scripts without Origin may log in.
    let r = c
        .post(format!("{base}/auth/session"))
        .header("origin", EVIL)
        .json(&json!({"email": "csrf@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn websockets_accept_the_cookie_from_an_allowed_origin_only() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    edge.api().register("wscookie@example.com", PW).await;
    let (access, refresh) = cookie_login(&edge.base, "wscookie@example.com").await;
    let url = format!("{}/ws", edge.base.replacen("http://", "ws://", 1));
    let open = |origin: Option<String>, cookie: Option<String>| {
        let url = url.clone();
        async move {
            let mut req = url.into_client_request().unwrap();
            if let Some(o) = origin {
                req.headers_mut().insert("origin", o.parse().unwrap());
            }
            if let Some(c) = cookie {
                req.headers_mut().insert("cookie", c.parse().unwrap());
            }
            let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
            ws::next(&mut socket, Duration::from_secs(10)).await
        }
    };
    match open(Some(edge.base.clone()), Some(jar(&access, &refresh))).await {
        Next::Json(hello) => assert_eq!(hello["type"], "connected"),
        _ => panic!("a same-origin socket with the session cookie is accepted"),
    }
    for (origin, cookie) in [
        (Some(EVIL.to_owned()), Some(jar(&access, &refresh))),
        (None, Some(jar(&access, &refresh))),
        (Some(edge.base.clone()), None),
        (
            Some(edge.base.clone()),
            Some("gathering_access=garbage".to_owned()),
        ),
    ] {
        match open(origin.clone(), cookie).await {
            Next::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1008, "{origin:?}"),
            _ => panic!("expected a 1008 close for origin {origin:?}"),
        }
    }
    edge.stop().await;
    auth.stop().await;
}
