//! Starting auth and edges for a test, and talking to them.

use std::collections::HashMap;
use std::net::SocketAddr;

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub struct Auth {
    pub addr: SocketAddr,
    shutdown: Shutdown,
    started: gathering_auth::Started,
}

impl Auth {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        self.started.wait().await.unwrap();
    }
}

fn vars(db: &TestDb, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        // Tests make their project folders in the system's temporary folder.
        (
            "GATHERING_PROJECT_ROOTS".into(),
            std::env::temp_dir().display().to_string(),
        ),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), (*val).into());
    }
    v
}

pub async fn start_auth(db: &TestDb, extra: &[(&str, &str)]) -> Auth {
    let mut pairs = vec![("AUTH_ADDR", "127.0.0.1:0")];
    pairs.extend_from_slice(extra);
    let config = gathering_auth::Config::from_vars(&vars(db, &pairs)).unwrap();
    let shutdown = Shutdown::new();
    let started = gathering_auth::start(config, shutdown.clone())
        .await
        .unwrap();
    Auth {
        addr: started.addr,
        shutdown,
        started,
    }
}

pub struct Edge {
    pub base: String,
    shutdown: Shutdown,
    started: gathering_edge::Started,
}

impl Edge {
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.started.wait().await.unwrap();
    }

    pub fn api(&self) -> Api {
        Api {
            client: gathering_testkit::http::client(),
            base: self.base.clone(),
        }
    }
}

/// An edge with generous rate limits (tests that exercise limits set their own).
pub async fn start_edge(db: &TestDb, auth: &Auth, extra: &[(&str, &str)]) -> Edge {
    start_edge_at(db, &auth.url(), extra).await
}

/// An edge whose auth service is at `auth_url` (which may not be listening yet).
pub async fn start_edge_at(db: &TestDb, auth_url: &str, extra: &[(&str, &str)]) -> Edge {
    let mut pairs = vec![
        ("EDGE_ADDR", "127.0.0.1:0"),
        ("EDGE_WORKERS", "1"),
        ("AUTH_URL", auth_url),
        ("RATE_LIMIT_AUTH_PER_MINUTE", "10000"),
        ("RATE_LIMIT_WRITE_PER_MINUTE", "10000"),
        ("RATE_LIMIT_READ_PER_MINUTE", "10000"),
    ];
    pairs.extend_from_slice(extra);
    let config = gathering_edge::Config::from_vars(&vars(db, &pairs)).unwrap();
    let shutdown = Shutdown::new();
    let started = gathering_edge::start(config, shutdown.clone())
        .await
        .unwrap();
    Edge {
        base: format!("http://{}", started.addr),
        shutdown,
        started,
    }
}

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn register(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/auth/register",
            None,
            &json!({"email": email, "password": password, "name": "Test User"}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        let req = self
            .client
            .post(format!("{}/auth/login", self.base))
            .form(&[("username", email), ("password", password)]);
        self.send(req).await
    }

    /// Registers and logs in; returns (access token, refresh token).
    pub async fn user(&self, email: &str, password: &str) -> (String, String) {
        let r = self.register(email, password).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = self.login(email, password).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        (
            r.body["access_token"].as_str().unwrap().to_owned(),
            r.body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }
}

/// Polls `f` until it returns true, for at most `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// Signs a token with the database's current signing key (development master key), so tests
/// can make tokens with exact expiry times.
pub async fn sign(db: &TestDb, claims: &gathering_core::claims::AccessClaims) -> String {
    let client = db.pool(1).get().await.unwrap();
    let row = client
        .query_one(
            "SELECT kid, private_key_sealed FROM auth.signing_keys WHERE retires_at IS NULL ORDER BY activated_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let kid: String = row.get(0);
    let sealed: Vec<u8> = row.get(1);
    let empty: HashMap<String, String> = HashMap::new();
    let master = gathering_core::seal::MasterKey::from_vars(
        &empty,
        gathering_core::Environment::Development,
    )
    .unwrap();
    let pkcs8 = master.open(&format!("signing-key:{kid}"), &sealed).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid);
    gathering_core::jwt_crypto::ensure_installed();
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
    )
    .unwrap()
}

pub async fn audit_types(db: &TestDb) -> Vec<String> {
    let client = db.pool(1).get().await.unwrap();
    client
        .query(
            "SELECT DISTINCT event_type FROM audit.security_events ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}
