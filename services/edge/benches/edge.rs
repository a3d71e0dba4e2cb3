//! Edge benchmark: auth throughput and latency, and WebSocket fan-out. Prints a table.
//!
//!     cargo bench -p gathering-edge --bench edge
//!
//! Auth and edge run in this process (release build), on a fresh database; the load comes
//! from the same machine, so client and servers share its cores.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gathering_core::Shutdown;
use gathering_events::{NewEvent, publish_in};
use gathering_testkit::TestDb;
use serde_json::{Value, json};

fn row(name: &str, value: String) {
    println!("| {name:<52} | {value:>34} |");
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

async fn login(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> (u16, Option<String>) {
    let r = client
        .post(format!("{base}/auth/login"))
        .form(&[("username", email), ("password", password)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["access_token"].as_str().map(str::to_owned))
}

/// Runs `clients` loops of `f` for `secs`; returns (requests/s, latencies).
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

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let auth_cfg =
        gathering_auth::Config::from_vars(&vars(&db, &[("AUTH_ADDR", "127.0.0.1:0")])).unwrap();
    let auth = gathering_auth::start(auth_cfg, Shutdown::new())
        .await
        .unwrap();
    let auth_url = format!("http://{}", auth.addr);
    let edge_cfg = gathering_edge::Config::from_vars(&vars(
        &db,
        &[
            ("EDGE_ADDR", "127.0.0.1:0"),
            ("AUTH_URL", auth_url.as_str()),
            ("RATE_LIMIT_ENABLED", "false"),
            ("EDGE_WORKERS", "2"),
        ],
    ))
    .unwrap();
    let edge = gathering_edge::start(edge_cfg, Shutdown::new())
        .await
        .unwrap();
    let base = format!("http://{}", edge.addr);
    let client = gathering_testkit::http::client();

    println!(
        "edge benchmark — {} cores, auth + edge in this process, PostgreSQL on the same machine\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| {:<52} | {:>34} |", "measure", "result");
    println!("|{}|{}|", "-".repeat(54), "-".repeat(36));

    let password = "bench password 123";
    for i in 0..8 {
        let r = client
            .post(format!("{base}/auth/register"))
            .json(&json!({"email": format!("u{i}@example.com"), "password": password, "name": "Bench"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }

    // Logins (argon2id m=19 MiB, t=2 on the blocking pool).
    let counter = Arc::new(AtomicU64::new(0));
    let (c, b, n) = (client.clone(), base.clone(), counter.clone());
    let (rate, lat) = load(8, 8, move || {
        let (c, b, n) = (c.clone(), b.clone(), n.clone());
        async move {
            let i = n.fetch_add(1, Ordering::Relaxed) % 8;
            login(&c, &b, &format!("u{i}@example.com"), password)
                .await
                .0
                == 200
        }
    })
    .await;
    let (p50, p99) = pct(lat);
    row(
        "logins/s (8 concurrent clients)",
        format!("{rate:.0}/s, p50 {} p99 {}", ms(p50), ms(p99)),
    );

    // Known vs unknown e-mail: each a first failure (no throttling yet), interleaved.
    for i in 0..40 {
        let r = client
            .post(format!("{base}/auth/register"))
            .json(&json!({"email": format!("known{i}@example.com"), "password": password, "name": "Bench"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let t = Instant::now();
        assert_eq!(
            login(
                &client,
                &base,
                &format!("known{i}@example.com"),
                "wrong password 1"
            )
            .await
            .0,
            401
        );
        known.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(
            login(
                &client,
                &base,
                &format!("ghost{i}@example.com"),
                "wrong password 1"
            )
            .await
            .0,
            401
        );
        unknown.push(t.elapsed());
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    row("failed login, known e-mail (mean of 40)", ms(mean(&known)));
    row(
        "failed login, unknown e-mail (mean of 40)",
        ms(mean(&unknown)),
    );

    let (_, token) = login(&client, &base, "u0@example.com", password).await;
    let token = token.unwrap();

    // Authenticated requests at 64 connections.
    for (path, what) in [
        ("/auth/verify", "POST /auth/verify (local token check only)"),
        ("/auth/me", "GET /auth/me (token check + auth gRPC + DB)"),
    ] {
        let (c, b, t) = (client.clone(), base.clone(), token.clone());
        let post = path == "/auth/verify";
        let (rate, lat) = load(64, 8, move || {
            let (c, b, t) = (c.clone(), b.clone(), t.clone());
            async move {
                let req = if post {
                    c.post(format!("{b}{path}"))
                } else {
                    c.get(format!("{b}{path}"))
                };
                req.bearer_auth(&t)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .await;
        let (p50, p99) = pct(lat);
        row(
            &format!("{what}, 64 conns"),
            format!("{rate:.0} req/s, p50 {} p99 {}", ms(p50), ms(p99)),
        );
    }

    chat_benchmark(&db, &vars(&db, &[])).await;

    // WebSocket fan-out: 500 clients, 50 events.
    let ws_url = format!("{}/ws?token={token}", base.replacen("http://", "ws://", 1));
    let clients = 500;
    let events = 50;
    let start = Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..clients {
        let mut s = gathering_testkit::ws::connect(&ws_url).await;
        gathering_testkit::ws::next_json(&mut s, Duration::from_secs(30)).await; // connected
        sockets.push(s);
    }
    row("WebSocket: 500 clients connected in", ms(start.elapsed()));
    let epoch = Instant::now();
    let mut readers = Vec::new();
    for mut s in sockets {
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while lat.len() < events {
                match tokio::time::timeout(Duration::from_secs(30), s.next()).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if v["type"] == "bench.tick" {
                            let sent = v["data"]["at_us"].as_u64().unwrap();
                            let now = epoch.elapsed().as_micros() as u64;
                            lat.push(Duration::from_micros(now.saturating_sub(sent)));
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            lat
        }));
    }
    let pool = db.pool(2);
    let pg = pool.get().await.unwrap();
    for i in 0..events {
        let at_us = epoch.elapsed().as_micros() as u64;
        publish_in(
            &pg,
            &[NewEvent::new("bench.tick", json!({"i": i, "at_us": at_us}))],
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap());
    }
    let delivered = all.len();
    let (p50, p99) = pct(all);
    row(
        "WebSocket fan-out, 500 clients × 50 events",
        format!("{delivered} delivered, p50 {} p99 {}", ms(p50), ms(p99)),
    );
}

/// Chat round trips through edge → LLM gateway → a fake OpenAI provider (canned answers), and
/// the same model call made directly to the gateway: the difference is the edge's own work
/// per chat (lease, profile, session, memory recall, history, storing the exchange).
async fn chat_benchmark(db: &TestDb, base_vars: &HashMap<String, String>) {
    use gathering_testkit::fake_llm::{FakeProvider, Wire};
    let fake = FakeProvider::start_canned(Wire::OpenAi).await;
    let mut gw_vars = base_vars.clone();
    gw_vars.insert("LLM_GATEWAY_ADDR".into(), "127.0.0.1:0".into());
    gw_vars.insert("LLM_GATEWAY_HTTP_ADDR".into(), "127.0.0.1:0".into());
    gw_vars.insert("OPENAI_BASE_URL".into(), fake.base_url());
    gw_vars.insert("OPENAI_API_KEY".into(), "sk-bench".into());
    let gateway = gathering_llm_gateway::start(
        gathering_llm_gateway::Config::from_vars(&gw_vars).unwrap(),
        Shutdown::new(),
    )
    .await
    .unwrap();
    let gateway_url = format!("http://{}", gateway.grpc_addr);
    let auth = gathering_auth::start(
        gathering_auth::Config::from_vars(&vars(db, &[("AUTH_ADDR", "127.0.0.1:0")])).unwrap(),
        Shutdown::new(),
    )
    .await
    .unwrap();
    let auth_url = format!("http://{}", auth.addr);
    let edge = gathering_edge::start(
        gathering_edge::Config::from_vars(&vars(
            db,
            &[
                ("EDGE_ADDR", "127.0.0.1:0"),
                ("AUTH_URL", auth_url.as_str()),
                ("RATE_LIMIT_ENABLED", "false"),
                ("LLM_GATEWAY_URL", gateway_url.as_str()),
                ("AGENT_DEFAULT_MODEL", "openai/gpt-4o"),
                ("AGENT_EMBEDDING_MODEL", "none"),
            ],
        ))
        .unwrap(),
        Shutdown::new(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", edge.addr);
    let client = gathering_testkit::http::client();
    let r = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": "chat-bench@example.com", "password": "bench password 123", "name": "Bench"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (_, token) = login(
        &client,
        &base,
        "chat-bench@example.com",
        "bench password 123",
    )
    .await;
    let token = token.unwrap();
    let pg = db.pool(1).get().await.unwrap();
    let agents: Vec<i64> = pg
        .query(
            "INSERT INTO agent.agents (name, model_id) SELECT 'bench-' || g, \
                 (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                  WHERE p.name = 'openai' AND m.model_name = 'gpt-4o') \
             FROM generate_series(1, 16) g RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    // Direct gRPC to the gateway: the floor.
    let grpc = gathering_proto::v1::llm_gateway_client::LlmGatewayClient::with_interceptor(
        tonic::transport::Channel::from_shared(gateway_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
        gathering_testkit::service_auth("bench"),
    );
    let (rate, lat) = load(16, 6, move || {
        let mut grpc = grpc.clone();
        async move {
            let req = gathering_proto::v1::CompletionRequest {
                model: "openai/gpt-4o".into(),
                messages: vec![gathering_proto::v1::ChatMessage {
                    role: "user".into(),
                    content: "hello".into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            grpc.complete(req).await.is_ok()
        }
    })
    .await;
    let (g50, g99) = pct(lat);
    row(
        "model call direct to gateway gRPC, 16 clients",
        format!("{rate:.0}/s, p50 {} p99 {}", ms(g50), ms(g99)),
    );

    // One client alone: the latency of a chat without queueing.
    let mut solo = Vec::new();
    let solo_agent = agents[0];
    for _ in 0..50 {
        let at = Instant::now();
        let ok = client
            .post(format!("{base}/agents/{solo_agent}/chat"))
            .bearer_auth(&token)
            .json(&json!({"message": "hello", "allow_tools": false}))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        assert!(ok);
        solo.push(at.elapsed());
    }
    let mut grpc1 = gathering_proto::v1::llm_gateway_client::LlmGatewayClient::with_interceptor(
        tonic::transport::Channel::from_shared(gateway_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
        gathering_testkit::service_auth("bench"),
    );
    let mut direct1 = Vec::new();
    for _ in 0..50 {
        let at = Instant::now();
        let req = gathering_proto::v1::CompletionRequest {
            model: "openai/gpt-4o".into(),
            messages: vec![gathering_proto::v1::ChatMessage {
                role: "user".into(),
                content: "hello".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        grpc1.complete(req).await.unwrap();
        direct1.push(at.elapsed());
    }
    let (s50, s99) = pct(solo);
    let (d50, _) = pct(direct1);
    row(
        "chat, 1 client: latency p50 / p99",
        format!("{} / {}", ms(s50), ms(s99)),
    );
    row(
        "edge's own work per chat, 1 client (p50 chat − p50 direct)",
        ms(s50.saturating_sub(d50)),
    );

    // Each client talks to its own agent (one message at a time per agent).
    let deadline = Instant::now() + Duration::from_secs(6);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for agent in agents {
        let (c, b, t) = (client.clone(), base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let at = Instant::now();
                let ok = c
                    .post(format!("{b}/agents/{agent}/chat"))
                    .bearer_auth(&t)
                    .json(&json!({"message": "hello", "allow_tools": false}))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                assert!(ok, "chat failed");
                lat.push(at.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let rate = lat.len() as f64 / started.elapsed().as_secs_f64();
    let (c50, c99) = pct(lat);
    row(
        "chat round trips edge → gateway → provider, 16 clients",
        format!("{rate:.0}/s, p50 {} p99 {}", ms(c50), ms(c99)),
    );
    row(
        "edge's own work per chat, 16 clients (p50 − p50 direct)",
        ms(c50.saturating_sub(g50)),
    );
}
