//! A gateway started in-process against a fresh database and four fake providers (OpenAI,
//! Anthropic, DeepSeek on the OpenAI wire, Ollama), each requiring its key.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_llm_gateway::{Config, Started};
use gathering_proto::service_auth::AuthedChannel;
use gathering_proto::v1 as pb;
use gathering_proto::v1::llm_gateway_client::LlmGatewayClient;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Wire};
use tonic::transport::Channel;

pub const OPENAI_KEY: &str = "sk-test-openai-4f9d2c7e1b";
pub const ANTHROPIC_KEY: &str = "sk-ant-test-8a3e6f0d2c";
pub const DEEPSEEK_KEY: &str = "sk-test-deepseek-5b1c9e7a3d";

pub struct Env {
    pub db: TestDb,
    pub openai: FakeProvider,
    pub anthropic: FakeProvider,
    pub deepseek: FakeProvider,
    pub ollama: FakeProvider,
    pub started: Option<Started>,
    pub grpc_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    pub shutdown: Shutdown,
    pub http: reqwest::Client,
}

pub fn vars(db: &TestDb, pairs: &[(&str, String)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        ("LLM_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        ("LLM_GATEWAY_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("LLM_RETRY_BASE_MS".into(), "10".into()),
        ("LLM_RETRY_MAX_MS".into(), "50".into()),
        ("LLM_USAGE_FLUSH_MS".into(), "20".into()),
        // Long: tests of key pick-up must prove the NOTIFY path, not the polling backstop.
        ("LLM_REGISTRY_REFRESH_MS".into(), "600000".into()),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), val.clone());
    }
    v
}

pub async fn start() -> Env {
    start_with(&[]).await
}

/// Starts with the four fakes configured, then `extra` on top (an empty value removes a
/// variable's effect, since blank means unset).
pub async fn start_with(extra: &[(&str, &str)]) -> Env {
    let db = TestDb::new().await;
    let openai = FakeProvider::start(Wire::OpenAi).await;
    let anthropic = FakeProvider::start(Wire::Anthropic).await;
    let deepseek = FakeProvider::start(Wire::OpenAi).await;
    let ollama = FakeProvider::start(Wire::Ollama).await;
    openai.require_key(OPENAI_KEY);
    anthropic.require_key(ANTHROPIC_KEY);
    deepseek.require_key(DEEPSEEK_KEY);
    let config = config_for(&db, [&openai, &anthropic, &deepseek, &ollama], extra);
    let shutdown = Shutdown::new();
    let started = gathering_llm_gateway::start(config, shutdown.clone())
        .await
        .expect("gateway starts");
    Env {
        grpc_addr: started.grpc_addr,
        http_addr: started.http_addr,
        started: Some(started),
        db,
        openai,
        anthropic,
        deepseek,
        ollama,
        shutdown,
        http: gathering_testkit::http::client(),
    }
}

/// A gateway's configuration with the fakes (OpenAI, Anthropic, DeepSeek, Ollama), then
/// `extra` on top.
fn config_for(db: &TestDb, fakes: [&FakeProvider; 4], extra: &[(&str, &str)]) -> Config {
    let [openai, anthropic, deepseek, ollama] = fakes;
    let mut pairs: Vec<(&str, String)> = vec![
        ("OPENAI_BASE_URL", openai.base_url()),
        ("OPENAI_API_KEY", OPENAI_KEY.into()),
        ("ANTHROPIC_BASE_URL", anthropic.base_url()),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY.into()),
        ("DEEPSEEK_BASE_URL", deepseek.base_url()),
        ("DEEPSEEK_API_KEY", DEEPSEEK_KEY.into()),
        ("OLLAMA_BASE_URL", ollama.base_url()),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push((k, (*v).to_string()));
    }
    Config::from_vars(&vars(db, &pairs)).expect("config")
}

/// Another gateway on the same database and the same fake providers, as a second instance
/// behind a load balancer would be. Stops when dropped.
pub struct Peer {
    pub http_addr: std::net::SocketAddr,
    pub started: Started,
    shutdown: Shutdown,
}

impl Peer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    /// A gRPC client carrying a service credential (as the edge and executors do).
    pub async fn grpc(&self) -> LlmGatewayClient<AuthedChannel> {
        LlmGatewayClient::with_interceptor(
            self.raw_channel().await,
            gathering_testkit::service_auth("test"),
        )
    }

    /// A channel with no credential at all (an attacker on the internal network).
    pub async fn raw_channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("gRPC URL")
            .connect()
            .await
            .expect("gRPC connect")
    }

    /// Starts a second gateway like this one (`extra` as given to [`start_with`]).
    pub async fn peer(&self, extra: &[(&str, &str)]) -> Peer {
        let fakes = [&self.openai, &self.anthropic, &self.deepseek, &self.ollama];
        let config = config_for(&self.db, fakes, extra);
        let shutdown = Shutdown::new();
        let started = gathering_llm_gateway::start(config, shutdown.clone())
            .await
            .expect("second gateway starts");
        Peer {
            http_addr: started.http_addr,
            started,
            shutdown,
        }
    }

    pub fn gateway(&self) -> &gathering_llm_gateway::Gateway {
        &self.started.as_ref().expect("running").gateway
    }

    /// Stops the gateway (flushing usage).
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(s) = self.started.take() {
            s.wait().await.expect("clean stop");
        }
    }

    /// Waits until `agent.llm_usage` has at least `n` rows; returns them oldest first.
    pub async fn usage_rows(&self, n: usize) -> Vec<tokio_postgres_row::Row> {
        let pool = self.db.pool(1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let client = pool.get().await.unwrap();
            let rows = client
                .query(
                    "SELECT request_id, kind, provider, model, caller_service, agent_id, user_id, \
                            status, error_kind, input_tokens, output_tokens, cost_usd, latency_ms, \
                            upstream_latency_ms, attempts, models_tried, stream, mock \
                     FROM agent.llm_usage ORDER BY id",
                    &[],
                )
                .await
                .unwrap();
            if rows.len() >= n || tokio::time::Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

pub mod tokio_postgres_row {
    pub use gathering_db::tokio_postgres::Row;
}

pub fn msg(role: &str, content: &str) -> pb::ChatMessage {
    pb::ChatMessage {
        role: role.into(),
        content: content.into(),
        ..Default::default()
    }
}

pub fn request(model: &str, text: &str) -> pb::CompletionRequest {
    pb::CompletionRequest {
        model: model.into(),
        messages: vec![msg("user", text)],
        ..Default::default()
    }
}

/// Everything logged in this test process, when `capture_logs` was called first.
static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(l) = LOGS.get() {
            l.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log event of every crate, at TRACE, to a buffer (JSON lines, as in production).
pub fn capture_logs() {
    LOGS.get_or_init(|| Mutex::new(Vec::new()));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(|| Capture)
        .try_init();
}

pub fn captured_logs() -> String {
    LOGS.get()
        .map(|l| String::from_utf8_lossy(&l.lock().unwrap()).into_owned())
        .unwrap_or_default()
}
