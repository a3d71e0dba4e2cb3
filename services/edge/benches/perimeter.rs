//! Perimeter benchmark: what the perimeter's protections cost and whether an attack on one of
//! them hurts everyone else. Prints a table.
//!
//!     cargo bench -p gathering-edge --bench perimeter
//!
//! 1. Login storm: `GET /auth/me` latency for a legitimate user, alone and while 64 clients
//!    keep sending wrong passwords (brute-force protection and per-account delays active, lock
//!    thresholds raised so every attempt is verified). Login holds no pooled connection while
//!    hashing or delaying, so the storm must not starve other auth calls (target: p99 ratio
//!    ≤ 2×).
//! 2. Shared rate limits: a write-tier request with the PostgreSQL-counted limit on (limit
//!    high enough never to refuse) and off; the difference is the added latency.
//!
//! Auth and edge run in this process (release build) on a fresh database; the load comes from
//! the same machine, so clients and servers share its cores.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use serde_json::{Value, json};

fn row(name: &str, value: String) {
    println!("| {name:<60} | {value:>40} |");
}

fn pct(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn vars(db: &TestDb, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        ("RUST_LOG".into(), "error".into()),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), (*val).into());
    }
    v
}

/// `clients` loops of `f` for `secs`: (requests/s, latencies).
async fn load<F, Fut>(clients: usize, secs: u64, f: F) -> (f64, Vec<Duration>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                assert!(f().await, "request failed");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (
        all.len() as f64 / started.elapsed().as_secs_f64().max(secs as f64),
        all,
    )
}

struct Stack {
    base: String,
    _auth: gathering_auth::Started,
    _edge: gathering_edge::Started,
}

async fn stack(db: &TestDb, auth_extra: &[(&str, &str)], edge_extra: &[(&str, &str)]) -> Stack {
    let mut a = vec![("AUTH_ADDR", "127.0.0.1:0")];
    a.extend_from_slice(auth_extra);
    let auth = gathering_auth::start(
        gathering_auth::Config::from_vars(&vars(db, &a)).unwrap(),
        Shutdown::new(),
    )
    .await
    .unwrap();
    let auth_url = format!("http://{}", auth.addr);
    let mut e = vec![
        ("EDGE_ADDR", "127.0.0.1:0"),
        ("AUTH_URL", auth_url.as_str()),
        ("EDGE_WORKERS", "2"),
    ];
    e.extend_from_slice(edge_extra);
    let edge = gathering_edge::start(
        gathering_edge::Config::from_vars(&vars(db, &e)).unwrap(),
        Shutdown::new(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", edge.addr);
    gathering_testkit::http::wait_ok(&format!("{base}/health/ready"), Duration::from_secs(30))
        .await;
    Stack {
        base,
        _auth: auth,
        _edge: edge,
    }
}

async fn token(client: &reqwest::Client, base: &str, email: &str) -> String {
    let r = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": "bench password 123", "name": "Bench"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r: Value = client
        .post(format!("{base}/auth/login"))
        .form(&[("username", email), ("password", "bench password 123")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

async fn me_latency(client: &reqwest::Client, base: &str, token: &str) -> (f64, Vec<Duration>) {
    let (c, b, t) = (client.clone(), base.to_owned(), token.to_owned());
    load(8, 6, move || {
        let (c, b, t) = (c.clone(), b.clone(), t.clone());
        async move {
            c.get(format!("{b}/auth/me"))
                .bearer_auth(&t)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        }
    })
    .await
}

async fn login_storm(client: &reqwest::Client) {
    let db = TestDb::new().await;
    let s = stack(
        &db,
        &[
            // Every attempt is verified and delayed, none refused early by a lock.
            ("LOGIN_LOCK_THRESHOLD", "1000000"),
            ("LOGIN_IP_LOCK_THRESHOLD", "1000000"),
        ],
        &[("RATE_LIMIT_ENABLED", "false")],
    )
    .await;
    let victim = token(client, &s.base, "victim@example.com").await;
    for i in 0..64 {
        token(client, &s.base, &format!("target{i}@example.com")).await;
    }
    let (rate_alone, alone) = me_latency(client, &s.base, &victim).await;

    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let mut storm = Vec::new();
    for i in 0..64 {
        let (c, b, stop, n) = (
            client.clone(),
            s.base.clone(),
            stop.clone(),
            attempts.clone(),
        );
        storm.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _ = c
                    .post(format!("{b}/auth/login"))
                    .form(&[
                        ("username", format!("target{i}@example.com")),
                        ("password", "wrong password".to_owned()),
                    ])
                    .send()
                    .await;
                n.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the storm reach its steady state (per-account delays grow with failures).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = attempts.load(Ordering::Relaxed);
    let started = Instant::now();
    let (rate_storm, during) = me_latency(client, &s.base, &victim).await;
    let storm_rate =
        (attempts.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in storm {
        let _ = t.await;
    }
    let (a50, a99) = pct(alone);
    let (d50, d99) = pct(during);
    row(
        "GET /auth/me, 8 clients, alone",
        format!("{rate_alone:.0} req/s, p50 {} p99 {}", ms(a50), ms(a99)),
    );
    row(
        "GET /auth/me, 8 clients, during a 64-client login storm",
        format!("{rate_storm:.0} req/s, p50 {} p99 {}", ms(d50), ms(d99)),
    );
    row(
        "wrong-password attempts answered during the storm",
        format!("{storm_rate:.0}/s"),
    );
    row(
        "p99 ratio storm / alone (target ≤ 2×)",
        format!("{:.2}×", d99.as_secs_f64() / a99.as_secs_f64()),
    );
}

async fn shared_limit_cost(client: &reqwest::Client) {
    let mut results = Vec::new();
    for (label, limits) in [
        (
            "off",
            [
                ("RATE_LIMIT_ENABLED", "false"),
                ("RATE_LIMIT_WRITE_PER_MINUTE", "30"),
            ],
        ),
        (
            "on",
            [
                ("RATE_LIMIT_ENABLED", "true"),
                ("RATE_LIMIT_WRITE_PER_MINUTE", "100000000"),
            ],
        ),
    ] {
        let db = TestDb::new().await;
        let mut edge_vars = limits.to_vec();
        edge_vars.push(("RATE_LIMIT_AUTH_PER_MINUTE", "1000"));
        edge_vars.push(("RATE_LIMIT_READ_PER_MINUTE", "100000000"));
        let s = stack(&db, &[], &edge_vars).await;
        let t = token(client, &s.base, "writer@example.com").await;
        let (c, b) = (client.clone(), s.base.clone());
        let (rate, lat) = load(16, 6, move || {
            let (c, b, t) = (c.clone(), b.clone(), t.clone());
            async move {
                c.post(format!("{b}/auth/verify"))
                    .bearer_auth(&t)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .await;
        let (p50, p99) = pct(lat);
        row(
            &format!("POST /auth/verify (write tier), 16 clients, shared limit {label}"),
            format!("{rate:.0} req/s, p50 {} p99 {}", ms(p50), ms(p99)),
        );
        results.push((p50, p99));
    }
    let (off, on) = (results[0], results[1]);
    row(
        "added by the shared limit (p50 / p99)",
        format!(
            "{} / {}",
            ms(on.0.saturating_sub(off.0)),
            ms(on.1.saturating_sub(off.1))
        ),
    );
}

#[tokio::main]
async fn main() {
    let client = gathering_testkit::http::client();
    println!(
        "perimeter benchmark — {} cores, auth + edge in this process, PostgreSQL on the same machine\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| {:<60} | {:>40} |", "measure", "result");
    println!("|{}|{}|", "-".repeat(62), "-".repeat(42));
    login_storm(&client).await;
    shared_limit_cost(&client).await;
}
