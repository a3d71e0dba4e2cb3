//! Auth under attack through the edge: lockouts, login rate limits, the audit of every event,
//! legacy hash upgrade, injection-shaped input and secrets kept out of the logs.

use std::time::Duration;

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{audit_types, start_auth, start_edge};

const PW: &str = "correct horse battery";

#[tokio::test]
async fn repeated_failures_lock_the_account_until_the_window_passes() {
    let db = TestDb::new().await;
    let auth = start_auth(
        &db,
        &[("LOGIN_LOCK_THRESHOLD", "3"), ("LOGIN_LOCK_SECONDS", "2")],
    )
    .await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    api.user("frank@example.com", PW).await;
    for _ in 0..3 {
        assert_eq!(
            api.login("frank@example.com", "bad password").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = api.login("frank@example.com", PW).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits: {:?}",
        locked.body
    );
    assert!(locked.headers.contains_key("retry-after"));
    let other = api.user("grace@example.com", PW).await;
    assert!(!other.0.is_empty(), "other accounts unaffected");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        api.login("frank@example.com", PW).await.status,
        StatusCode::OK,
        "unlocked after the window"
    );
    let types = audit_types(&db).await;
    assert!(types.contains(&"account_locked".to_string()), "{types:?}");
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn the_sixth_login_in_a_minute_gets_429_with_its_headers() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("RATE_LIMIT_AUTH_PER_MINUTE", "5")]).await;
    let api = edge.api();
    for _ in 0..5 {
        assert_eq!(
            api.login("nobody@example.com", "whatever1").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = api.login("nobody@example.com", "whatever1").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.body,
        json!({"error": "Rate limit exceeded: 5 per 1 minute"})
    );
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(r.headers["x-ratelimit-limit"], "5");
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    assert!(r.headers.contains_key("x-ratelimit-reset"));
    // Other tiers keep their own counters.
    assert_eq!(api.get("/health/live", None).await.status, StatusCode::OK);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn every_auth_event_kind_is_audited_with_its_client() {
    let db = TestDb::new().await;
    let hash = bcrypt::hash("admin password", 4).unwrap();
    let auth = start_auth(
        &db,
        &[
            ("ADMIN_EMAIL", "root@example.com"),
            ("ADMIN_PASSWORD_HASH", hash.as_str()),
            ("LOGIN_LOCK_THRESHOLD", "2"),
        ],
    )
    .await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let admin = api.login("root@example.com", "admin password").await;
    assert_eq!(admin.status, StatusCode::OK);
    let admin_token = admin.body["access_token"].as_str().unwrap().to_owned();
    let me = api.get("/auth/me", Some(&admin_token)).await;
    assert_eq!(
        me.body,
        json!({"id": "admin", "email": "root@example.com", "name": "Administrator", "role": "admin", "is_active": true, "created_at": null})
    );

    let (token, refresh) = api.user("hank@example.com", PW).await;
    let user_id = api.get("/auth/me", Some(&token)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post("/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await;
    api.post("/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await; // reuse
    api.login("hank@example.com", "bad password").await;
    api.login("hank@example.com", "bad password").await; // locks
    api.get("/auth/audit", None).await; // missing token
    api.get("/auth/audit", Some("not.a.token")).await; // invalid token
    let (token2, _) = api.user("ivy@example.com", PW).await;
    let ivy = api.get("/auth/me", Some(&token2)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post(
        "/auth/change-password",
        Some(&token2),
        &json!({"current_password": PW, "new_password": "another long pass"}),
    )
    .await;
    let relog = api.login("ivy@example.com", "another long pass").await;
    let token3 = relog.body["access_token"].as_str().unwrap().to_owned();
    api.post("/auth/logout", Some(&token3), &json!({})).await;
    let patch = |body: serde_json::Value| {
        api.send(
            api.client
                .patch(format!("{}/auth/users/{user_id}", api.base))
                .bearer_auth(&admin_token)
                .json(&body),
        )
    };
    assert_eq!(patch(json!({"role": "admin"})).await.status, StatusCode::OK);
    assert_eq!(
        patch(json!({"is_active": false})).await.status,
        StatusCode::OK
    );
    api.post(
        &format!("/auth/users/{ivy}/logout-all"),
        Some(&admin_token),
        &json!({}),
    )
    .await;

    let types = audit_types(&db).await;
    for kind in [
        "auth_success",
        "auth_failure",
        "user_registered",
        "token_issued",
        "token_refreshed",
        "refresh_token_reuse",
        "account_locked",
        "auth_missing_token",
        "auth_invalid_token",
        "password_changed",
        "logout",
        "logout_all",
        "role_changed",
        "user_deactivated",
    ] {
        assert!(
            types.contains(&kind.to_string()),
            "no audit row for {kind}: {types:?}"
        );
    }
    let listed = api
        .get(
            "/auth/audit?event_type=auth_failure&limit=10",
            Some(&admin_token),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let first = &listed.body["events"][0];
    assert_eq!(first["event_type"], "auth_failure");
    assert_eq!(first["ip_address"], "127.0.0.1");
    assert!(first["request_id"].as_str().unwrap().starts_with("req_"));
    let client = db.pool(1).get().await.unwrap();
    let leaked: i64 = client
        .query_one(
            "SELECT count(*) FROM audit.security_events WHERE message LIKE '%' || $1 || '%' OR details::text LIKE '%' || $1 || '%'",
            &[&PW],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0, "no password in the audit");
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn a_legacy_bcrypt_hash_is_upgraded_to_argon2id_on_login() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let client = db.pool(1).get().await.unwrap();
    let legacy = bcrypt::hash(PW, 4).unwrap();
    client
        .execute("INSERT INTO auth.users (email, name, password_hash) VALUES ('old@example.com', 'Old', $1)", &[&legacy])
        .await
        .unwrap();
    assert_eq!(
        edge.api().login("old@example.com", PW).await.status,
        StatusCode::OK
    );
    let hash: String = client
        .query_one(
            "SELECT password_hash FROM auth.users WHERE email = 'old@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(
        edge.api().login("old@example.com", PW).await.status,
        StatusCode::OK,
        "still logs in"
    );
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn injection_shaped_input_changes_nothing() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    api.user("judy@example.com", PW).await;
    let client = db.pool(1).get().await.unwrap();
    let snapshot = || async {
        let c = db.pool(1).get().await.unwrap();
        let users: i64 = c
            .query_one("SELECT count(*) FROM auth.users", &[])
            .await
            .unwrap()
            .get(0);
        let tables: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'auth'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let role: String = c
            .query_one(
                "SELECT role FROM auth.users WHERE email = 'judy@example.com'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (users, tables, role)
    };
    let before = snapshot().await;
    let mut created = 0;
    let payloads = [
        "' OR '1'='1",
        "judy@example.com'--",
        "x'; DROP TABLE auth.users; --",
        "'); UPDATE auth.users SET role='admin'; --",
        "\0\u{1}",
        "%27%20OR%201%3D1",
        "${jndi:ldap://x}",
        "<script>alert(1)</script>",
    ];
    for p in payloads {
        let r = api.login(p, p).await;
        assert!(
            r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{p}: {}",
            r.status
        );
        let r = api.login("judy@example.com", p).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = api
            .post(
                "/auth/register",
                None,
                &json!({"email": format!("{p}@example.com"), "password": format!("{p}-long-enough"), "name": p}),
            )
            .await;
        if r.status == StatusCode::CREATED {
            // A syntactically valid address (`%27…` is legal): stored as the literal text.
            assert_eq!(r.body["email"], format!("{p}@example.com"));
            created += 1;
        } else {
            assert!(r.status.is_client_error(), "{p}: {}", r.status);
        }
        let r = api
            .post("/auth/refresh", None, &json!({"refresh_token": p}))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // A header cannot carry control characters at all; the token is then simply absent.
        let token = (!p.chars().any(char::is_control)).then_some(p);
        let r = api
            .get(&format!("/auth/audit?event_type={}", urlencode(p)), token)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = api.post("/auth/register", None, &json!({"email": "ok@example.com", "password": "x'; DROP TABLE auth.users; --", "name": "Robert'); DROP TABLE students;--"})).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "hostile-looking values are just data"
    );
    assert_eq!(r.body["name"], "Robert'); DROP TABLE students;--");
    let after = snapshot().await;
    assert_eq!(
        (after.0, after.1, after.2),
        (before.0 + 1 + created, before.1, before.2)
    );
    let bodies = ["{", "[]", "null", "{\"email\": 5}"];
    for b in bodies {
        let r = api
            .send(
                api.client
                    .post(format!("{}/auth/login/json", api.base))
                    .header("content-type", "application/json")
                    .body(b),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(r.body["detail"].is_array());
    }
    drop(client);
    edge.stop().await;
    auth.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let logs = gathering_testkit::logs::capture();
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let secret_pw = "S3cret-Pa55phrase-xyzzy";
    let (token, refresh) = api.user("kim@example.com", secret_pw).await;
    api.login("kim@example.com", "Wr0ng-Pa55phrase-plugh").await;
    let r = api
        .post("/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await;
    let refresh2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    api.post("/auth/refresh", None, &json!({"refresh_token": refresh}))
        .await;
    api.get("/auth/me", Some(&token)).await;
    api.post(
        "/auth/logout",
        Some(&token),
        &json!({"refresh_token": refresh2}),
    )
    .await;
    api.get("/auth/me", Some(&token)).await;
    edge.stop().await;
    auth.stop().await;
    let text = logs.text();
    assert!(
        text.len() > 1000,
        "logs were captured ({} bytes)",
        text.len()
    );
    for secret in [
        secret_pw,
        "Wr0ng-Pa55phrase-plugh",
        token.as_str(),
        refresh.as_str(),
        refresh2.as_str(),
    ] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(!text.contains(signature));
}
