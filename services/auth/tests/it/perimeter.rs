//! The auth service as an attacker on the internal network sees it: a raw gRPC client with no
//! credential, a client with a service credential but no user token, and an ordinary user's
//! token used for administration.

use std::collections::HashMap;

use gathering_core::Shutdown;
use gathering_proto::v1 as pb;
use gathering_proto::v1::auth_service_client::AuthServiceClient;
use gathering_testkit::TestDb;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

struct Running {
    addr: std::net::SocketAddr,
    shutdown: Shutdown,
    started: gathering_auth::Started,
}

async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Running {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        ("AUTH_ADDR".into(), "127.0.0.1:0".into()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    let shutdown = Shutdown::new();
    let started = gathering_auth::start(
        gathering_auth::Config::from_vars(&vars).unwrap(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    Running {
        addr: started.addr,
        shutdown,
        started,
    }
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn as_user<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "x-gathering-user-token",
        MetadataValue::try_from(token).unwrap(),
    );
    req
}

#[tokio::test]
async fn a_caller_without_a_service_credential_gets_unauthenticated_and_health_stays_open() {
    let db = TestDb::new().await;
    let auth = start(&db, &[]).await;
    let mut raw = AuthServiceClient::new(channel(auth.addr).await);
    let codes = vec![
        raw.list_users(pb::ListUsersRequest {
            limit: 10,
            offset: 0,
        })
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        raw.set_role(pb::SetRoleRequest {
            user_id: "x".into(),
            role: "admin".into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        raw.set_active(pb::SetActiveRequest {
            user_id: "x".into(),
            is_active: false,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        raw.logout_all(pb::LogoutAllRequest {
            user_id: "x".into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        raw.login(pb::LoginRequest {
            email: "a@example.com".into(),
            password: "whatever1".into(),
            client: None,
        })
        .await
        .map(|_| ())
        .unwrap_err()
        .code(),
        raw.get_signing_keys(pb::GetSigningKeysRequest {})
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
    ];
    assert!(
        codes.iter().all(|c| *c == Code::Unauthenticated),
        "{codes:?}"
    );

    // A token minted with another master key is no credential either.
    let other = gathering_core::seal::MasterKey::parse(&"ab".repeat(32)).unwrap();
    let forged = gathering_proto::service_auth::ServiceAuth::new(
        gathering_core::service_token::ServiceKey::derive(&other),
        "edge",
    );
    let mut forged = AuthServiceClient::with_interceptor(channel(auth.addr).await, forged);
    let err = forged
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(auth.addr).await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, 1, "SERVING");
    auth.shutdown.trigger();
    auth.started.wait().await.unwrap();
}

#[tokio::test]
async fn user_administration_needs_an_admin_token_even_with_a_service_credential() {
    let db = TestDb::new().await;
    let hash = bcrypt::hash("admin password", 4).unwrap();
    let auth = start(
        &db,
        &[
            ("ADMIN_EMAIL", "root@example.com"),
            ("ADMIN_PASSWORD_HASH", hash.as_str()),
        ],
    )
    .await;
    let mut c = AuthServiceClient::with_interceptor(
        channel(auth.addr).await,
        gathering_testkit::service_auth("edge"),
    );
    let user = c
        .register(pb::RegisterRequest {
            email: "mallory@example.com".into(),
            password: "long enough".into(),
            name: "Mallory".into(),
            client: None,
        })
        .await
        .unwrap()
        .into_inner();
    let login = |email: &'static str, password: &'static str| {
        let mut c = c.clone();
        async move {
            c.login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
                client: None,
            })
            .await
            .unwrap()
            .into_inner()
            .access_token
        }
    };
    let mallory = login("mallory@example.com", "long enough").await;
    let admin = login("root@example.com", "admin password").await;

    // No user token: the edge's credential alone administers nothing.
    let err = c
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // An ordinary user's token: refused, and nothing changes.
    let err = c
        .set_role(as_user(
            pb::SetRoleRequest {
                user_id: user.id.clone(),
                role: "admin".into(),
                ..Default::default()
            },
            &mallory,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c
        .list_users(as_user(pb::ListUsersRequest::default(), &mallory))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c
        .get_user(as_user(
            pb::GetUserRequest {
                user_id: "admin".into(),
            },
            &mallory,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A request claiming another user's token id cannot log it out.
    let err = c
        .logout(as_user(
            pb::LogoutRequest {
                jti: "someone-else".into(),
                user_id: "admin".into(),
                expires_at: 4_000_000_000,
                ..Default::default()
            },
            &mallory,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A garbage token is not a user.
    let err = c
        .list_users(as_user(pb::ListUsersRequest::default(), "not.a.token"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let me = c
        .get_user(as_user(
            pb::GetUserRequest {
                user_id: user.id.clone(),
            },
            &mallory,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.role, "user");

    // The admin's token works.
    let listed = c
        .list_users(as_user(
            pb::ListUsersRequest {
                limit: 10,
                offset: 0,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total, 1);
    let promoted = c
        .set_role(as_user(
            pb::SetRoleRequest {
                user_id: user.id.clone(),
                role: "admin".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(promoted.role, "admin");
    // Promotion revoked Mallory's old token: it is no admin token now either.
    let err = c
        .list_users(as_user(pb::ListUsersRequest::default(), &mallory))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    auth.shutdown.trigger();
    auth.started.wait().await.unwrap();
}

#[tokio::test]
async fn closed_registration_refuses_new_accounts() {
    let db = TestDb::new().await;
    let auth = start(&db, &[("GATHERING_REGISTRATION", "closed")]).await;
    let mut c = AuthServiceClient::with_interceptor(
        channel(auth.addr).await,
        gathering_testkit::service_auth("edge"),
    );
    let err = c
        .register(pb::RegisterRequest {
            email: "new@example.com".into(),
            password: "long enough".into(),
            name: "New".into(),
            client: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let users: i64 = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM auth.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0);
    auth.shutdown.trigger();
    auth.started.wait().await.unwrap();
}

#[test]
fn registration_defaults_to_closed_outside_development() {
    let vars = |env: &str, reg: Option<&str>| {
        let mut v: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), "postgres://u@h/d".into()),
            ("GATHERING_ENV".into(), env.into()),
            ("GATHERING_MASTER_KEY".into(), "11".repeat(32)),
        ]);
        if let Some(r) = reg {
            v.insert("GATHERING_REGISTRATION".into(), r.into());
        }
        v
    };
    let cfg = |env, reg| gathering_auth::Config::from_vars(&vars(env, reg)).unwrap();
    assert!(cfg("development", None).registration_open);
    assert!(!cfg("staging", None).registration_open);
    assert!(!cfg("production", None).registration_open);
    assert!(cfg("production", Some("open")).registration_open);
    assert_eq!(
        gathering_auth::Config::from_vars(&vars("development", Some("maybe")))
            .unwrap_err()
            .var,
        "GATHERING_REGISTRATION"
    );
}
