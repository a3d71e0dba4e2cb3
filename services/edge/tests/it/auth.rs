//! Auth through the edge: tokens, refresh, revocation across edges and restarts, throttling,
//! rate limits, audit, hostile input, and secrets kept out of the logs.

use std::time::Duration;

use gathering_core::claims::AccessClaims;
use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{audit_types, eventually, sign, start_auth, start_edge};

const PW: &str = "correct horse battery";

#[tokio::test]
async fn register_login_me_and_the_contract_shapes() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();

    let r = api.register("Ada@Example.com", PW).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["email"], "Ada@Example.com");
    assert_eq!(r.body["role"], "user");
    assert!(r.body["id"].as_str().unwrap().len() == 36);
    let again = api.register("ada@example.com", PW).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body["detail"], "Email already registered");

    let bad = api
        .post(
            "/auth/register",
            None,
            &json!({"email": "nope", "password": "short", "name": ""}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<String> = bad.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"][1].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(locs, vec!["email", "password", "name"]);

    let login = api.login("ada@example.com", PW).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["token_type"], "bearer");
    assert_eq!(login.body["expires_in"], 900);
    assert!(
        login.body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("grt_")
    );
    let token = login.body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert!(header.kid.is_some());

    let me = api.get("/api/auth/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], "Ada@Example.com");
    let verify = api.post("/auth/verify", Some(token), &json!({})).await;
    assert_eq!(verify.body["valid"], true);
    assert_eq!(verify.body["role"], "user");

    let json_login = api
        .post(
            "/auth/login/json",
            None,
            &json!({"email": "ADA@example.com", "password": PW}),
        )
        .await;
    assert_eq!(json_login.status, StatusCode::OK);

    for (email, pw) in [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PW),
    ] {
        let r = api.login(email, pw).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["detail"], "Incorrect email or password");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    let missing = api.get("/auth/audit", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body["detail"], "Missing authentication token");
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    let garbage = api
        .send(
            api.client
                .get(format!("{}/auth/audit", api.base))
                .header("Authorization", "Token abc"),
        )
        .await;
    assert_eq!(
        garbage.body["detail"],
        "Invalid authentication header format"
    );
    let forged = api
        .get("/auth/audit", Some("eyJhbGciOiJIUzI1NiJ9.e30.x"))
        .await;
    assert_eq!(forged.body["detail"], "Invalid or expired token");
    let non_admin = api.get("/auth/audit", Some(token)).await;
    assert_eq!(non_admin.status, StatusCode::FORBIDDEN);
    // Security headers and request ids on every answer, errors included.
    assert_eq!(missing.headers["x-frame-options"], "DENY");
    assert!(
        missing.headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let echoed = api
        .send(
            api.client
                .get(format!("{}/health/live", api.base))
                .header("X-Request-ID", "abc-123"),
        )
        .await;
    assert_eq!(echoed.headers["x-request-id"], "abc-123");
    edge.stop().await;
    auth.stop().await;
}

fn claims(sub: &str, iat: i64, exp: i64) -> AccessClaims {
    AccessClaims {
        iss: "gathering".into(),
        aud: "gathering-api".into(),
        sub: sub.into(),
        email: "x@example.com".into(),
        role: "user".into(),
        iat,
        iat_ms: iat * 1000,
        exp,
        jti: uuid::Uuid::new_v4().simple().to_string(),
    }
}

#[tokio::test]
async fn expiry_is_enforced_at_the_boundary() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let now = chrono::Utc::now().timestamp();
    let valid = sign(&db, &claims("u1", now - 10, now + 2)).await;
    let expired = sign(&db, &claims("u1", now - 10, now - 1)).await;
    let wrong_audience = sign(
        &db,
        &AccessClaims {
            aud: "other".into(),
            ..claims("u1", now, now + 60)
        },
    )
    .await;
    assert_eq!(
        api.post("/auth/verify", Some(&valid), &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.post("/auth/verify", Some(&expired), &json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.post("/auth/verify", Some(&wrong_audience), &json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The valid one crosses its expiry: refused from then on.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let late = api.post("/auth/verify", Some(&valid), &json!({})).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    assert_eq!(late.body["detail"], "Invalid or expired token");
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let (access1, refresh1) = api.user("bob@example.com", PW).await;

    let r = api
        .post("/auth/refresh", None, &json!({"refresh_token": refresh1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let access2 = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh1, refresh2);
    assert_eq!(
        api.get("/auth/me", Some(&access2)).await.status,
        StatusCode::OK
    );

    // The rotated token comes back: stolen. The whole family dies, access tokens included.
    let reuse = api
        .post("/auth/refresh", None, &json!({"refresh_token": refresh1}))
        .await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reuse.body["detail"], "Refresh token reuse detected");
    let next = api
        .post("/auth/refresh", None, &json!({"refresh_token": refresh2}))
        .await;
    assert_eq!(
        next.status,
        StatusCode::UNAUTHORIZED,
        "the family is revoked"
    );
    for token in [&access1, &access2] {
        let refused = eventually(3, || async {
            api.get("/auth/me", Some(token)).await.status == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(refused, "access tokens of a revoked family are refused");
    }
    assert!(
        audit_types(&db)
            .await
            .contains(&"refresh_token_reuse".to_string())
    );
    let bogus = api
        .post("/auth/refresh", None, &json!({"refresh_token": "grt_nope"}))
        .await;
    assert_eq!(bogus.status, StatusCode::UNAUTHORIZED);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn heavy_logout_on_one_edge_is_refused_by_another_and_after_restarts() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let a = start_edge(&db, &auth, &[]).await;
    let b = start_edge(&db, &auth, &[]).await;
    let (api_a, api_b) = (a.api(), b.api());
    let (token, _) = api_a.user("carol@example.com", PW).await;
    let (other, _) = api_a.user("dave@example.com", PW).await;
    assert_eq!(
        api_b.get("/auth/me", Some(&token)).await.status,
        StatusCode::OK
    );

    let out = api_a.post("/auth/logout", Some(&token), &json!({})).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.body["message"], "Successfully logged out");
    assert_eq!(
        api_a.get("/auth/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED,
        "at once on the edge that logged out"
    );
    let started = std::time::Instant::now();
    let refused = eventually(2, || async {
        api_b.get("/auth/me", Some(&token)).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "the other edge refuses it");
    println!(
        "revocation reached the second edge within {:?}",
        started.elapsed()
    );
    assert_eq!(
        api_b.get("/auth/me", Some(&other)).await.status,
        StatusCode::OK,
        "other users unaffected"
    );

    // Everything restarts: the revocation is in the database, not in memory.
    let auth_addr = auth.addr.to_string();
    a.stop().await;
    b.stop().await;
    auth.stop().await;
    let auth = start_auth(&db, &[("AUTH_ADDR", auth_addr.as_str())]).await;
    let a = start_edge(&db, &auth, &[]).await;
    let b = start_edge(&db, &auth, &[]).await;
    for edge in [&a, &b] {
        assert_eq!(
            edge.api().get("/auth/me", Some(&token)).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            edge.api().get("/auth/me", Some(&other)).await.status,
            StatusCode::OK
        );
    }
    // Logout everywhere: every token of the user, on every edge.
    let all = a
        .api()
        .post("/auth/logout-all", Some(&other), &json!({}))
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(
        eventually(2, || async {
            b.api().get("/auth/me", Some(&other)).await.status == StatusCode::UNAUTHORIZED
        })
        .await
    );
    let fresh = a.api().login("dave@example.com", PW).await;
    let fresh = fresh.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        b.api().get("/auth/me", Some(&fresh)).await.status,
        StatusCode::OK,
        "a new login works at once"
    );
    a.stop().await;
    b.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn expired_revocations_are_cleaned_up() {
    let db = TestDb::new().await;
    let auth = start_auth(
        &db,
        &[
            ("ACCESS_TOKEN_TTL_SECONDS", "1"),
            ("AUTH_CLEANUP_INTERVAL_SECONDS", "1"),
        ],
    )
    .await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let (token, _) = api.user("erin@example.com", PW).await;
    assert_eq!(
        api.post("/auth/logout", Some(&token), &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let pool = db.pool(1);
    let count = || async {
        let c = pool.get().await.unwrap();
        c.query_one("SELECT count(*) FROM auth.token_blacklist", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(count().await, 1);
    assert!(
        eventually(5, || async { count().await == 0 }).await,
        "the expired revocation is deleted"
    );
    edge.stop().await;
    auth.stop().await;
}

/// The edge remembers tokens it verified (skipping the signature check on later requests), but
/// never past their expiry: a token used a moment ago is refused once it has expired.
#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[("ACCESS_TOKEN_TTL_SECONDS", "2")]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let (token, _) = api.user("frank@example.com", PW).await;
    // POST /auth/verify is the edge's local check alone (no call to auth), so only the
    // edge's own expiry check can refuse the token below.
    for _ in 0..3 {
        assert_eq!(
            api.post("/auth/verify", Some(&token), &json!({}))
                .await
                .status,
            StatusCode::OK
        );
    }
    assert!(
        eventually(5, || async {
            api.post("/auth/verify", Some(&token), &json!({}))
                .await
                .status
                == StatusCode::UNAUTHORIZED
        })
        .await,
        "refused after its expiry"
    );
    edge.stop().await;
    auth.stop().await;
}
