//! The `/login` page (issue 17, part 4): the form, errors, `next` kept and checked (no open
//! redirect), browsers without a session sent there, and page loads resuming a session from
//! the refresh cookie.

use gathering_testkit::TestDb;
use reqwest::StatusCode;

use crate::browser_sessions::{EVIL, PW, client, cookie_login, cookie_value, jar, set_cookies};
use crate::support::{start_auth, start_edge};

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
