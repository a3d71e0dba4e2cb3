//! Virtual keys, limits and cache benchmark (issue 22): what the key check, the budget check,
//! the per-key rate limit (PostgreSQL-backed, leased and batched) and the cache lookup add to a
//! call, and how many cached answers a gateway gives per second.
//!
//! The gateway runs in this process (`gathering_llm_gateway::start`, optimised by the bench
//! profile) on a fresh database, against a canned fake OpenAI provider on a runtime of its
//! own; clients are raw hyper HTTP/1.1 keep-alive connections. Rows, paced at 1,000 requests/s
//! by 64 clients:
//!
//! - **plain**: an operator key, no cache (the path before issue 22);
//! - **virtual key**: a key with a budget and rpm/tpm limits (key check + budget + limit);
//! - **key + cache miss**: the same, with `"cache": true` and a new prompt each time (the
//!   lookup misses, the provider answers, the answer is stored off the request path);
//! - **key + cache hit**: the same prompt each time (no provider call).
//!
//! Then closed-loop throughput at 64 clients: plain against cache hits.
//!
//! `cargo bench -p gathering-llm-gateway --bench teams` (needs `DATABASE_URL`; `BENCH_SECONDS`
//! changes the 4 s measuring window).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gathering_core::Shutdown;
use gathering_proto::v1 as pb;
use gathering_proto::v1::llm_gateway_client::LlmGatewayClient;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Wire};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const OPERATOR: &str = "bench-operator-key-0123456789";

#[derive(Clone, Copy, PartialEq)]
enum Row {
    Plain,
    Key,
    KeyMiss,
    KeyHit,
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Plain => "plain (operator key, no cache)",
            Row::Key => "virtual key: check + budget + rpm/tpm limit",
            Row::KeyMiss => "virtual key + cache lookup (miss, stored)",
            Row::KeyHit => "virtual key + cache hit (no provider call)",
        }
    }

    /// The body of the `n`th request.
    fn body(self, n: u64) -> Bytes {
        let body = match self {
            Row::Plain | Row::Key => {
                r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Say ok."}],"max_tokens":16}"#.to_owned()
            }
            Row::KeyMiss => format!(
                r#"{{"model":"openai/gpt-4o-mini","cache":true,"messages":[{{"role":"user","content":"Say ok, {n}."}}],"max_tokens":16}}"#
            ),
            Row::KeyHit => {
                r#"{"model":"openai/gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"Say ok."}],"max_tokens":16}"#.to_owned()
            }
        };
        Bytes::from(body)
    }
}

struct Outcome {
    qps: f64,
    p50: f64,
    p99: f64,
    errors: usize,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn http_connection(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    send
}

/// `clients` clients for `warmup + measure`, paced to `rate` requests/s in all when given.
async fn run(
    row: Row,
    key: Arc<str>,
    clients: usize,
    rate: Option<f64>,
    gateway: SocketAddr,
    (warmup, measure): (Duration, Duration),
) -> Outcome {
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + warmup;
    let stop_at = measure_from + measure;
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (key, counter) = (key.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(100_000);
            let mut errors = 0usize;
            let mut send = http_connection(gateway).await;
            let auth = format!("Bearer {key}");
            let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
            let mut next =
                start + interval.map_or(Duration::ZERO, |iv| iv.mul_f64(i as f64 / clients as f64));
            tokio::time::sleep_until(start.into()).await;
            loop {
                if let Some(iv) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += iv;
                }
                let t0 = Instant::now();
                if t0 >= stop_at {
                    break;
                }
                let req = hyper::Request::post("/v1/chat/completions")
                    .header("host", "bench")
                    .header("content-type", "application/json")
                    .header("authorization", auth.as_str())
                    .body(Full::new(row.body(counter.fetch_add(1, Ordering::Relaxed))))
                    .unwrap();
                let ok = match send.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        let hit = resp.headers().get("x-gathering-cache").cloned();
                        let read = resp.into_body().collect().await.is_ok();
                        // A hit row must really be served from the cache.
                        read && status == 200
                            && (row != Row::KeyHit || hit.is_some_and(|h| h == "hit"))
                    }
                    Err(_) => {
                        send = http_connection(gateway).await;
                        false
                    }
                };
                let t1 = Instant::now();
                if t0 >= measure_from {
                    if ok {
                        lat.push(u32::try_from((t1 - t0).as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("client task");
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    Outcome {
        qps: all.len() as f64 / measure.as_secs_f64(),
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        errors,
    }
}

fn main() {
    gathering_core::tls::install_crypto_provider();
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let window = (Duration::from_secs(1), Duration::from_secs(seconds));

    let fake_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("fake runtime");
    let fake = fake_rt.block_on(FakeProvider::start_canned(Wire::OpenAi));
    let fake_addr = fake.addr;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let db = TestDb::new().await;
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", db.url.clone()),
            ("GATHERING_ENV", "development".into()),
            ("LLM_GATEWAY_ADDR", "127.0.0.1:0".into()),
            ("LLM_GATEWAY_HTTP_ADDR", "127.0.0.1:0".into()),
            ("LLM_GATEWAY_API_KEYS", OPERATOR.into()),
            ("OPENAI_BASE_URL", format!("http://{fake_addr}/v1")),
            ("OPENAI_API_KEY", "sk-bench-0123456789".into()),
            ("LLM_MAX_CONCURRENCY_PER_PROVIDER", "2048".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let config = gathering_llm_gateway::Config::from_vars(&vars).expect("config");
        let shutdown = Shutdown::new();
        let started = gathering_llm_gateway::start(config, shutdown.clone())
            .await
            .expect("gateway starts");
        let gateway = started.http_addr;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", started.grpc_addr))
            .expect("url")
            .connect()
            .await
            .expect("grpc");
        let mut grpc =
            LlmGatewayClient::with_interceptor(channel, gathering_testkit::service_auth("bench"));
        // Limits and budget high enough never to refuse: the row measures their cost.
        let key: Arc<str> = grpc
            .create_gateway_key(pb::CreateGatewayKeyRequest {
                name: "bench".into(),
                team: "bench".into(),
                budget: Some(pb::Budget {
                    amount_usd: 1e6,
                    period: "daily".into(),
                }),
                limits: Some(pb::KeyLimits {
                    rpm: 10_000_000,
                    tpm: 1_000_000_000,
                }),
                ..Default::default()
            })
            .await
            .expect("key")
            .into_inner()
            .secret
            .into();
        let operator: Arc<str> = OPERATOR.into();
        // The entry the hit rows read.
        run(Row::KeyHit, key.clone(), 1, None, gateway, (Duration::ZERO, Duration::from_millis(300))).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        println!(
            "\n## Gateway keys, limits and cache ({seconds} s per row after 1 s warm-up, in-process gateway)\n"
        );
        println!("### Paced at 1,000 requests/s (64 clients)\n");
        println!("| path | QPS | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let plain = run(Row::Plain, operator.clone(), 64, Some(1000.0), gateway, window).await;
        println!(
            "| {} | {:.0} | {:.3} | {:.3} |  |  | {} |",
            Row::Plain.name(),
            plain.qps,
            plain.p50,
            plain.p99,
            plain.errors
        );
        for row in [Row::Key, Row::KeyMiss, Row::KeyHit] {
            let o = run(row, key.clone(), 64, Some(1000.0), gateway, window).await;
            println!(
                "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                row.name(),
                o.qps,
                o.p50,
                o.p99,
                o.p50 - plain.p50,
                o.p99 - plain.p99,
                o.errors
            );
        }
        println!("\n### Closed loop, 64 clients (throughput)\n");
        println!("| path | QPS | p50 ms | p99 ms | errors |");
        println!("|---|---:|---:|---:|---:|");
        for (row, who) in [(Row::Plain, &operator), (Row::KeyHit, &key)] {
            let o = run(row, who.clone(), 64, None, gateway, window).await;
            println!(
                "| {} | {:.0} | {:.3} | {:.3} | {} |",
                row.name(),
                o.qps,
                o.p50,
                o.p99,
                o.errors
            );
        }
        let client = db.pool(1).get().await.expect("db");
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE cached), count(*) FROM agent.llm_usage",
                &[],
            )
            .await
            .expect("count");
        let cached: i64 = row.try_get(0).expect("cached");
        let total: i64 = row.try_get(1).expect("total");
        println!(
            "\nusage rows written: {total}, of which {cached} answered from the cache (no provider call)"
        );
        shutdown.trigger();
        let _ = started.wait().await;
    });
    drop(fake);
    drop(fake_rt);
}
