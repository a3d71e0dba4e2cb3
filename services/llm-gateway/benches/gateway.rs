//! Gateway benchmark: added latency and throughput of the LLM gateway, and its memory.
//!
//! Runs the real `gathering llm-gateway` process (release build: `cargo build --release -p
//! gathering` first) against a canned fake OpenAI provider in this process, and drives load
//! with minimal clients (raw hyper HTTP/1.1 keep-alive connections; tonic for gRPC), one
//! connection per client. For each concurrency it measures the same request sent directly to
//! the fake and through the gateway (OpenAI-compatible HTTP and gRPC); "added" latency is the
//! difference of the percentiles. A paced run holds 1,000 requests/s. RSS is read from
//! `/proc/<pid>/status`. Usage rows are really written to PostgreSQL during the runs.
//!
//! `cargo bench -p gathering-llm-gateway --bench gateway` (needs `DATABASE_URL`; set
//! `BENCH_SECONDS` to change the 4 s measuring window).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gathering_proto::v1 as pb;
use gathering_proto::v1::llm_gateway_client::LlmGatewayClient;
use gathering_testkit::fake_llm::{FakeProvider, Wire};
use gathering_testkit::{GatheringProcess, TestDb, free_port};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const GATEWAY_BODY: &str = r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Say ok."}],"max_tokens":16}"#;
const DIRECT_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say ok."}],"max_tokens":16,"stream":false}"#;

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Direct,
    Http,
    Grpc,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct to fake",
            Path::Http => "gateway HTTP /v1/chat/completions",
            Path::Grpc => "gateway gRPC Complete",
        }
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

/// Runs `clients` closed-loop clients for `warmup + measure`; with `rate`, each client is
/// paced so that all together send `rate` requests per second.
#[allow(clippy::too_many_arguments)] // a benchmark scenario: every knob is an argument
async fn run(
    path: Path,
    clients: usize,
    rate: Option<f64>,
    fake: SocketAddr,
    gw_http: SocketAddr,
    gw_grpc: SocketAddr,
    warmup: Duration,
    measure: Duration,
) -> Outcome {
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + warmup;
    let stop_at = measure_from + measure;
    let channels: Vec<_> = if path == Path::Grpc {
        let n = clients.div_ceil(16);
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(
                tonic::transport::Endpoint::from_shared(format!("http://{gw_grpc}"))
                    .unwrap()
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .expect("grpc connect"),
            );
        }
        v
    } else {
        Vec::new()
    };
    let mut tasks = Vec::new();
    for i in 0..clients {
        let channel = channels.get(i / 16).cloned();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(100_000);
            let mut errors = 0usize;
            let (addr, body, uri) = match path {
                Path::Direct => (fake, DIRECT_BODY, "/v1/chat/completions"),
                _ => (gw_http, GATEWAY_BODY, "/v1/chat/completions"),
            };
            let mut http = if path == Path::Grpc {
                None
            } else {
                Some(http_connection(addr).await)
            };
            let mut grpc = channel.map(|c| {
                LlmGatewayClient::with_interceptor(c, gathering_testkit::service_auth("bench"))
            });
            let body = Bytes::from_static(body.as_bytes());
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
                let ok = if let Some(send) = http.as_mut() {
                    let req = hyper::Request::post(uri)
                        .header("host", "bench")
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    match send.send_request(req).await {
                        Ok(resp) => {
                            let status = resp.status();
                            resp.into_body().collect().await.is_ok() && status == 200
                        }
                        Err(_) => {
                            *send = http_connection(addr).await;
                            false
                        }
                    }
                } else if let Some(client) = grpc.as_mut() {
                    let req = pb::CompletionRequest {
                        model: "openai/gpt-4o-mini".into(),
                        messages: vec![pb::ChatMessage {
                            role: "user".into(),
                            content: "Say ok.".into(),
                            ..Default::default()
                        }],
                        max_tokens: Some(16),
                        ..Default::default()
                    };
                    client.complete(req).await.is_ok()
                } else {
                    false
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

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("release/gathering")
}

fn main() {
    gathering_core::tls::install_crypto_provider();
    let exe = binary();
    if !exe.exists() {
        eprintln!(
            "{} is missing: run `cargo build --release -p gathering` first",
            exe.display()
        );
        std::process::exit(2);
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let measure = Duration::from_secs(seconds);
    let warmup = Duration::from_secs(1);

    // The fake runs on a runtime of its own, as a separate server would.
    let fake_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
    rt.block_on(async move {
        let db = TestDb::new().await;
        let grpc_port = free_port();
        let http_port = free_port();
        let env: HashMap<String, String> = [
            ("DATABASE_URL", db.url.clone()),
            ("GATHERING_ENV", "development".into()),
            ("RUST_LOG", "warn".into()),
            ("LLM_GATEWAY_ADDR", format!("127.0.0.1:{grpc_port}")),
            ("LLM_GATEWAY_HTTP_ADDR", format!("127.0.0.1:{http_port}")),
            ("OPENAI_BASE_URL", format!("http://{fake_addr}/v1")),
            ("OPENAI_API_KEY", "sk-bench-0123456789".into()),
            ("LLM_MAX_CONCURRENCY_PER_PROVIDER", "2048".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let process = GatheringProcess::spawn(&exe, &["llm-gateway"], &env);
        let pid = process.pid().expect("pid");
        let gw_http: SocketAddr = ([127, 0, 0, 1], http_port).into();
        let gw_grpc: SocketAddr = ([127, 0, 0, 1], grpc_port).into();
        let ready = async {
            let client = gathering_testkit::http::client();
            for _ in 0..300 {
                if let Ok(r) = client
                    .get(format!("http://{gw_http}/health/ready"))
                    .send()
                    .await
                    && r.status().is_success()
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        if !ready.await {
            process.signal(nix::sys::signal::Signal::SIGKILL);
            let (_, _, stderr) = process.wait_output().await;
            eprintln!("the gateway did not become ready:\n{stderr}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_rss = rss_kb(pid, "VmRSS:");

        // Peak RSS while loaded, sampled.
        let sampling = Arc::new(AtomicBool::new(true));
        let peak = {
            let sampling = sampling.clone();
            tokio::spawn(async move {
                let mut peak = 0;
                while sampling.load(Ordering::Relaxed) {
                    peak = peak.max(rss_kb(pid, "VmRSS:"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                peak
            })
        };

        println!(
            "\n## LLM gateway benchmark ({} s per row after 1 s warm-up)\n",
            seconds
        );
        println!(
            "| clients | path | QPS | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |"
        );
        println!("|---:|---|---:|---:|---:|---:|---:|---:|");
        let mut rows = Vec::new();
        for clients in [1usize, 64, 256] {
            let direct = run(
                Path::Direct,
                clients,
                None,
                fake_addr,
                gw_http,
                gw_grpc,
                warmup,
                measure,
            )
            .await;
            for path in [Path::Direct, Path::Http, Path::Grpc] {
                let o = if path == Path::Direct {
                    Outcome {
                        qps: direct.qps,
                        p50: direct.p50,
                        p99: direct.p99,
                        errors: direct.errors,
                    }
                } else {
                    run(
                        path, clients, None, fake_addr, gw_http, gw_grpc, warmup, measure,
                    )
                    .await
                };
                let (a50, a99) = if path == Path::Direct {
                    ("".to_string(), "".to_string())
                } else {
                    (
                        format!("{:.3}", o.p50 - direct.p50),
                        format!("{:.3}", o.p99 - direct.p99),
                    )
                };
                println!(
                    "| {clients} | {} | {:.0} | {:.3} | {:.3} | {a50} | {a99} | {} |",
                    path.name(),
                    o.qps,
                    o.p50,
                    o.p99,
                    o.errors
                );
                rows.push(o);
            }
        }
        println!("\n### Paced at 1,000 requests/s (64 clients)\n");
        println!("| path | QPS | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let direct = run(
            Path::Direct,
            64,
            Some(1000.0),
            fake_addr,
            gw_http,
            gw_grpc,
            warmup,
            measure,
        )
        .await;
        println!(
            "| {} | {:.0} | {:.3} | {:.3} |  |  | {} |",
            Path::Direct.name(),
            direct.qps,
            direct.p50,
            direct.p99,
            direct.errors
        );
        for path in [Path::Http, Path::Grpc] {
            let o = run(
                path,
                64,
                Some(1000.0),
                fake_addr,
                gw_http,
                gw_grpc,
                warmup,
                measure,
            )
            .await;
            println!(
                "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
                path.name(),
                o.qps,
                o.p50,
                o.p99,
                o.p50 - direct.p50,
                o.p99 - direct.p99,
                o.errors
            );
        }
        sampling.store(false, Ordering::Relaxed);
        let loaded_peak = peak.await.unwrap_or(0);
        let hwm = rss_kb(pid, "VmHWM:");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kb(pid, "VmRSS:");
        let client = db.pool(1).get().await.expect("db");
        let usage_rows: i64 = client
            .query_one("SELECT count(*) FROM agent.llm_usage", &[])
            .await
            .expect("count")
            .get(0);
        println!("\n### Gateway process memory (`gathering llm-gateway`, release)\n");
        println!("| idle RSS | peak RSS under load (sampled) | VmHWM | RSS 2 s after load |");
        println!("|---:|---:|---:|---:|");
        println!(
            "| {:.1} MB | {:.1} MB | {:.1} MB | {:.1} MB |",
            idle_rss as f64 / 1024.0,
            loaded_peak as f64 / 1024.0,
            hwm as f64 / 1024.0,
            after as f64 / 1024.0
        );
        println!("\nusage rows written during the run: {usage_rows}");
        drop(process);
    });
    drop(fake);
    drop(fake_rt);
}
