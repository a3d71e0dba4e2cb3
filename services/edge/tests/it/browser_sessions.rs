//! Cookie sessions for browsers (`/auth/session`), the CSRF rule, cookies on WebSockets, and the
//! `/login` page with its redirects (issue 17, parts 3 and 4).

use std::time::Duration;

use gathering_testkit::TestDb;
use gathering_testkit::ws::{self, Next};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{eventually, start_auth, start_edge};

const PW: &str = "correct horse battery";
const EVIL: &str = "http://evil.example";

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

fn jar(access: &str, refresh: &str) -> String {
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

#[tokio::test]
async fn the_login_page_form_and_redirects() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let base = edge.base.clone();
    edge.api().register("page@example.com", PW).await;
    let c = client();

    // The page: a form posting to /auth/session, `next` kept (escaped), errors from a fixed list.
    let r = c
        .get(format!(
            "{base}/login?next=%2Fagents%3Fa%3D1&error=credentials"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self'") && !csp.contains("script-src"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"action="/auth/session""#));
    assert!(html.contains(r#"value="/agents?a=1""#));
    assert!(html.contains(r#"<label for="email">"#) && html.contains(r#"role="alert""#));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external asset"
    );
    for evil in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
    ] {
        let html = c
            .get(format!("{base}/login?next={evil}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains(r#"name="next" value="/""#), "{evil}");
    }

    // Unauthenticated browser navigation goes to the login page; API clients get 401 JSON.
    let r = c
        .get(format!("{base}/api/agents?limit=5"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fapi%2Fagents%3Flimit%3D5"
    );
    let r = c.get(format!("{base}/api/agents")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The form: success goes to `next`, with the cookies; refused `next` goes to `/`.
    let form = |next: &str, password: &str| {
        c.post(format!("{base}/auth/session"))
            .header("origin", base.clone())
            .form(&[
                ("email", "page@example.com"),
                ("password", password),
                ("next", next),
            ])
            .send()
    };
    let r = form("/agents?a=1", PW).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/agents?a=1");
    assert!(cookie_value(r.headers(), "gathering_access").is_some());
    for evil in [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil",
    ] {
        let r = form(evil, PW).await.unwrap();
        assert_eq!(r.headers()["location"], "/", "{evil}");
    }
    let r = form("/agents", "wrong password").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/login?error=credentials&next=%2Fagents"
    );
    assert!(set_cookies(r.headers()).is_empty());
    // A form posted from another site signs no one in.
    let r = c
        .post(format!("{base}/auth/session"))
        .header("origin", EVIL)
        .form(&[
            ("email", "page@example.com"),
            ("password", PW),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?error=origin&next=%2F");
    assert!(set_cookies(r.headers()).is_empty());
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn a_page_load_resumes_the_session_from_the_refresh_cookie() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let base = edge.base.clone();
    edge.api().register("resume@example.com", PW).await;
    let (_, refresh1) = cookie_login(&base, "resume@example.com").await;
    let c = client();
    let load = |cookie: String, accept: &'static str| {
        c.get(format!("{base}/api/agents"))
            .header("accept", accept)
            .header("cookie", cookie)
            .send()
    };
    // No access cookie (expired and dropped by the browser), or a stale one: the page loads
    // and the answer carries a rotated pair.
    let r = load(format!("gathering_refresh={refresh1}"), "text/html")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let refresh2 = cookie_value(r.headers(), "gathering_refresh").unwrap();
    let access2 = cookie_value(r.headers(), "gathering_access").unwrap();
    assert_ne!(refresh1, refresh2);
    let r = load(jar("stale.token.here", &refresh2), "text/html")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let refresh3 = cookie_value(r.headers(), "gathering_refresh").unwrap();
    // A valid access cookie needs no rotation.
    let r = load(jar(&access2, &refresh3), "text/html").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookies(r.headers()).is_empty());
    // Scripts are not resumed: they get the 401 (the page reloads, or refreshes itself).
    let r = load(format!("gathering_refresh={refresh3}"), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A refresh cookie already rotated away: to the login page.
    let r = load(format!("gathering_refresh={refresh1}"), "text/html")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookies(r.headers()).is_empty());
    edge.stop().await;
    auth.stop().await;
}
