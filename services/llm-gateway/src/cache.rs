//! Exact-match response cache of chat answers, shared by every gateway through
//! `agent.gateway_cache` (unlogged: a cache may be lost in a crash).
//!
//! **What is cached.** Deterministic requests: temperature 0, or an explicit `"cache": true`
//! in the body; `"cache": false` opts out. Only over the HTTP API (agents and pipelines over
//! gRPC are not cached: their tool loops are stateful). Mock answers and answers that ended in
//! an error are not stored.
//!
//! **The key** is the SHA-256 of a canonical encoding of the request (messages, tools with
//! their JSON Schemas with object keys sorted, tool-call arguments likewise, `max_tokens`,
//! temperature, stop sequences), the models it resolved to (the primary and each fallback, as
//! `provider/model`: a catalogue change that re-points an alias changes the key), and the
//! caller's scope: a team's keys share answers, a key without a team has its own, trusted
//! callers theirs. Streaming and non-streaming requests share entries.
//!
//! **Bounds.** Entries live `LLM_CACHE_TTL_SECONDS`; an answer larger than
//! `LLM_CACHE_MAX_ENTRY_BYTES` is not stored; a sweeper (one gateway at a time, under an
//! advisory lock) deletes expired entries and then the oldest ones beyond
//! `LLM_CACHE_MAX_BYTES`. Writes happen off the request path; a lookup is one indexed read,
//! and a failed lookup is a miss (the cache never fails a call).
//!
//! A hit is answered with `x-gathering-cache: hit` and `"cached": true`, is recorded in usage
//! with `cached = true` at zero cost and zero tokens, and a streaming request gets the answer
//! replayed as a stream.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use gathering_core::Shutdown;
use gathering_db::Pool;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::GatewayError;
use crate::model::{ChatOutput, ChatRequest, FinishReason, StreamEvent, TokenUsage, ToolCall};

/// Whether a request may be answered from (and stored in) the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Never (gRPC callers, `"cache": false`).
    #[default]
    Off,
    /// When the request is deterministic (temperature 0).
    Auto,
    /// Always (`"cache": true`).
    On,
}

impl CacheMode {
    pub fn applies(self, request: &ChatRequest) -> bool {
        match self {
            CacheMode::Off => false,
            CacheMode::On => true,
            CacheMode::Auto => request.temperature == Some(0.0),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `LLM_CACHE` (default on).
    pub enabled: bool,
    /// `LLM_CACHE_TTL_SECONDS` (default 3600).
    pub ttl: Duration,
    /// `LLM_CACHE_MAX_BYTES` (default 256 MiB): total size kept.
    pub max_bytes: i64,
    /// `LLM_CACHE_MAX_ENTRY_BYTES` (default 1 MiB): larger answers are not stored.
    pub max_entry_bytes: usize,
    /// How often the sweeper runs.
    pub sweep_every: Duration,
}

/// A request's cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey(pub [u8; 32]);

/// Length-prefixed fields into SHA-256, so that no two different requests encode alike.
struct Encoder(ring::digest::Context);

impl Encoder {
    fn tag(&mut self, t: u8) {
        self.0.update(&[t]);
    }

    fn len(&mut self, n: usize) {
        self.0.update(&(n as u64).to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.update(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.tag(0),
            Some(s) => {
                self.tag(1);
                self.str(s);
            }
        }
    }

    /// JSON with object keys sorted (whatever order the client sent them in).
    fn json(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag(0),
            Value::Bool(b) => self.tag(if *b { 2 } else { 1 }),
            Value::Number(n) => {
                self.tag(3);
                self.str(&n.to_string());
            }
            Value::String(s) => {
                self.tag(4);
                self.str(s);
            }
            Value::Array(items) => {
                self.tag(5);
                self.len(items.len());
                items.iter().for_each(|i| self.json(i));
            }
            Value::Object(map) => {
                self.tag(6);
                self.len(map.len());
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (k, v) in entries {
                    self.str(k);
                    self.json(v);
                }
            }
        }
    }

    /// Tool-call arguments: as JSON when they parse, else as text.
    fn arguments(&mut self, raw: &str) {
        match serde_json::from_str::<Value>(raw) {
            Ok(v) => self.json(&v),
            Err(_) => {
                self.tag(7);
                self.str(raw);
            }
        }
    }
}

/// The key of `request` sent by a caller of `scope` to `models` (primary, then fallbacks).
pub fn key(scope: &str, models: &[&str], request: &ChatRequest) -> CacheKey {
    let mut e = Encoder(ring::digest::Context::new(&ring::digest::SHA256));
    e.str("gathering-cache-v1");
    e.str(scope);
    e.len(models.len());
    models.iter().for_each(|m| e.str(m));
    e.len(request.messages.len());
    for m in &request.messages {
        e.str(m.role.as_str());
        e.str(&m.content);
        e.len(m.tool_calls.len());
        for c in &m.tool_calls {
            e.str(&c.id);
            e.str(&c.name);
            e.arguments(&c.arguments);
        }
        e.opt_str(m.tool_call_id.as_deref());
        e.opt_str(m.name.as_deref());
    }
    e.len(request.tools.len());
    for t in &request.tools {
        e.str(&t.name);
        e.str(&t.description);
        e.json(&t.parameters);
    }
    e.opt_str(request.max_tokens.map(|n| n.to_string()).as_deref());
    // 0.0 and -0.0 are the same temperature.
    e.opt_str(
        request
            .temperature
            .map(|t| if t == 0.0 { 0.0f32 } else { t }.to_bits().to_string())
            .as_deref(),
    );
    e.len(request.stop.len());
    request.stop.iter().for_each(|s| e.str(s));
    let mut out = [0u8; 32];
    out.copy_from_slice(e.0.finish().as_ref());
    CacheKey(out)
}

#[derive(Serialize, Deserialize)]
struct StoredCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    content: String,
    tool_calls: Vec<StoredCall>,
    finish: String,
    input_tokens: u32,
    output_tokens: u32,
}

fn encode(output: &ChatOutput) -> Option<Vec<u8>> {
    serde_json::to_vec(&Stored {
        content: output.content.clone(),
        tool_calls: output
            .tool_calls
            .iter()
            .map(|c| StoredCall {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            })
            .collect(),
        finish: output.finish.as_str().to_owned(),
        input_tokens: output.usage.input,
        output_tokens: output.usage.output,
    })
    .ok()
}

fn decode(body: &[u8]) -> Option<ChatOutput> {
    let s: Stored = serde_json::from_slice(body).ok()?;
    Some(ChatOutput {
        content: s.content,
        tool_calls: s
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect(),
        finish: FinishReason::parse(&s.finish)?,
        usage: TokenUsage {
            input: s.input_tokens,
            output: s.output_tokens,
        },
    })
}

/// A cached answer and the model that gave it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub model: String,
    pub output: ChatOutput,
}

struct Entry {
    key: CacheKey,
    model: String,
    body: Vec<u8>,
}

pub struct ResponseCache {
    pool: Pool,
    config: CacheConfig,
    writes: mpsc::Sender<Entry>,
}

const LOOKUP: &str =
    "SELECT model, body FROM agent.gateway_cache WHERE key = $1 AND expires_at > now()";
const STORE: &str = "INSERT INTO agent.gateway_cache (key, model, body, size_bytes, expires_at) \
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) \
     ON CONFLICT (key) DO UPDATE SET model = EXCLUDED.model, body = EXCLUDED.body, \
         size_bytes = EXCLUDED.size_bytes, created_at = now(), expires_at = EXCLUDED.expires_at";
/// Any constant: one sweeper at a time across gateways.
const SWEEP_LOCK: i64 = 0x6761_7465_6361_6368;

impl ResponseCache {
    /// The cache and its writer and sweeper tasks (they stop at `shutdown`).
    pub fn start(
        pool: Pool,
        config: CacheConfig,
        shutdown: Shutdown,
    ) -> (
        std::sync::Arc<ResponseCache>,
        Vec<tokio::task::JoinHandle<()>>,
    ) {
        let (tx, rx) = mpsc::channel(1024);
        let cache = std::sync::Arc::new(ResponseCache {
            pool: pool.clone(),
            config,
            writes: tx,
        });
        let mut tasks = vec![tokio::spawn(writer(
            pool,
            rx,
            cache.config.ttl,
            shutdown.clone(),
        ))];
        if cache.config.enabled {
            tasks.push(tokio::spawn(sweeper(cache.clone(), shutdown)));
        }
        (cache, tasks)
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// The live entry for `key`; a database failure is a miss.
    pub async fn get(&self, key: &CacheKey) -> Option<Hit> {
        let looked = async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(LOOKUP).await?;
            let row = client.query_opt(&statement, &[&key.0.as_slice()]).await?;
            Ok::<_, gathering_db::DbError>(match row {
                None => None,
                Some(r) => Some((r.try_get::<_, String>(0)?, r.try_get::<_, Vec<u8>>(1)?)),
            })
        };
        match looked.await {
            Ok(Some((model, body))) => {
                let output = decode(&body)?;
                metrics::counter!("llm_gateway_cache_total", "outcome" => "hit").increment(1);
                Some(Hit { model, output })
            }
            Ok(None) => {
                metrics::counter!("llm_gateway_cache_total", "outcome" => "miss").increment(1);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cache lookup failed; treating it as a miss");
                metrics::counter!("llm_gateway_cache_total", "outcome" => "error").increment(1);
                None
            }
        }
    }

    /// Stores an answer, off the request path (dropped when the writer is far behind).
    pub fn put(&self, key: CacheKey, model: &str, output: &ChatOutput) {
        if output.finish == FinishReason::Error {
            return;
        }
        let Some(body) = encode(output) else {
            return;
        };
        if body.len() > self.config.max_entry_bytes {
            metrics::counter!("llm_gateway_cache_total", "outcome" => "too_large").increment(1);
            return;
        }
        let entry = Entry {
            key,
            model: model.to_owned(),
            body,
        };
        if self.writes.try_send(entry).is_err() {
            metrics::counter!("llm_gateway_cache_total", "outcome" => "store_dropped").increment(1);
        }
    }

    /// Deletes expired entries, then the oldest beyond the size bound. Returns how many rows
    /// went; 0 when another gateway is sweeping.
    pub async fn sweep(&self) -> Result<u64, gathering_db::DbError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
            .await?
            .try_get(0)?;
        if !locked {
            return Ok(0);
        }
        let expired = tx
            .execute(
                "DELETE FROM agent.gateway_cache WHERE expires_at <= now()",
                &[],
            )
            .await?;
        let over = tx
            .execute(
                "DELETE FROM agent.gateway_cache WHERE key IN ( \
                     SELECT key FROM (SELECT key, sum(size_bytes) OVER \
                         (ORDER BY created_at DESC, key) AS kept FROM agent.gateway_cache) s \
                     WHERE s.kept > $1)",
                &[&self.config.max_bytes],
            )
            .await?;
        tx.commit().await?;
        Ok(expired + over)
    }
}

async fn writer(pool: Pool, mut rx: mpsc::Receiver<Entry>, ttl: Duration, shutdown: Shutdown) {
    let ttl = ttl.as_secs_f64();
    loop {
        // Entries still queued at shutdown are dropped: it is a cache.
        let e = tokio::select! {
            e = rx.recv() => match e {
                Some(e) => e,
                None => return,
            },
            _ = shutdown.wait() => return,
        };
        let stored = async {
            let client = pool.get().await?;
            let statement = client.prepare_cached(STORE).await?;
            let size = i32::try_from(e.body.len()).unwrap_or(i32::MAX);
            client
                .execute(
                    &statement,
                    &[&e.key.0.as_slice(), &e.model, &e.body, &size, &ttl],
                )
                .await?;
            Ok::<_, gathering_db::DbError>(())
        };
        if let Err(err) = stored.await {
            tracing::warn!(error = %err, "cache store failed");
        }
    }
}

async fn sweeper(cache: std::sync::Arc<ResponseCache>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(cache.config.sweep_every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        match cache.sweep().await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "cache swept"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cache sweep failed"),
        }
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, GatewayError>> + Send>>;

/// A cached answer as stream events: the text in pieces, the tool calls, the finish.
pub fn replay(output: &ChatOutput) -> Vec<StreamEvent> {
    const PIECE: usize = 64;
    let mut events = Vec::new();
    let mut rest = output.content.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(PIECE);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        events.push(StreamEvent::Text(rest[..end].to_owned()));
        rest = &rest[end..];
    }
    if !output.tool_calls.is_empty() {
        events.push(StreamEvent::ToolCalls(output.tool_calls.clone()));
    }
    events.push(StreamEvent::Finish {
        finish: output.finish,
        usage: output.usage,
    });
    events
}

/// Passes `inner` through, and stores the whole answer once it finished well.
pub fn filling(
    inner: EventStream,
    cache: std::sync::Arc<ResponseCache>,
    key: CacheKey,
    model: String,
) -> EventStream {
    let mut content = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    Box::pin(inner.inspect(move |event| match event {
        Ok(StreamEvent::Text(t)) => content.push_str(t),
        Ok(StreamEvent::ToolCalls(c)) => calls.extend(c.iter().cloned()),
        Ok(StreamEvent::Finish { finish, usage }) => cache.put(
            key,
            &model,
            &ChatOutput {
                content: std::mem::take(&mut content),
                tool_calls: std::mem::take(&mut calls),
                finish: *finish,
                usage: *usage,
            },
        ),
        Err(_) => {}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Message, Role, ToolDef};
    use serde_json::json;

    fn request(temperature: Option<f32>, schema: Value) -> ChatRequest {
        ChatRequest {
            messages: vec![Message::new(Role::User, "hi")],
            tools: vec![ToolDef {
                name: "t".into(),
                description: "d".into(),
                parameters: schema,
            }],
            max_tokens: Some(16),
            temperature,
            stop: Vec::new(),
        }
    }

    #[test]
    fn keys_ignore_json_key_order_and_see_everything_else() {
        let a = request(
            Some(0.0),
            json!({"type": "object", "properties": {"x": {}}}),
        );
        let b = request(
            Some(-0.0),
            json!({"properties": {"x": {}}, "type": "object"}),
        );
        assert_eq!(key("s", &["openai/m"], &a), key("s", &["openai/m"], &b));
        assert_ne!(key("s", &["openai/m"], &a), key("t", &["openai/m"], &a));
        assert_ne!(key("s", &["openai/m"], &a), key("s", &["openai/n"], &a));
        assert_ne!(
            key("s", &["openai/m"], &a),
            key("s", &["openai/m", "x/y"], &a)
        );
        let c = request(
            Some(0.5),
            json!({"type": "object", "properties": {"x": {}}}),
        );
        assert_ne!(key("s", &["openai/m"], &a), key("s", &["openai/m"], &c));
    }

    #[test]
    fn modes() {
        let det = request(Some(0.0), json!({}));
        let warm = request(Some(0.7), json!({}));
        let unset = request(None, json!({}));
        assert!(CacheMode::Auto.applies(&det));
        assert!(!CacheMode::Auto.applies(&warm));
        assert!(!CacheMode::Auto.applies(&unset));
        assert!(CacheMode::On.applies(&warm));
        assert!(!CacheMode::Off.applies(&det));
    }

    #[test]
    fn replay_reassembles_the_answer() {
        let out = ChatOutput {
            content: "é".repeat(100),
            tool_calls: Vec::new(),
            finish: FinishReason::Stop,
            usage: TokenUsage {
                input: 3,
                output: 4,
            },
        };
        let events = replay(&out);
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, out.content);
        assert!(events.len() > 3);
        assert!(matches!(events.last(), Some(StreamEvent::Finish { .. })));
        assert_eq!(decode(&encode(&out).unwrap()).unwrap(), out);
    }
}
