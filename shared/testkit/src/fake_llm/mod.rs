//! Fake LLM providers: small real HTTP servers on `127.0.0.1:0`, each speaking one provider's
//! wire format exactly, so the gateway (and later agents and pipelines) can be tested end to end
//! without the network and without mocking our own code.
//!
//! | wire | endpoints | base URL to configure |
//! |---|---|---|
//! | [`Wire::OpenAi`] (also DeepSeek) | `POST /v1/chat/completions` (JSON, or SSE with `data: [DONE]`), `POST /v1/embeddings`, `GET /v1/models` | `http://127.0.0.1:PORT/v1` |
//! | [`Wire::Anthropic`] | `POST /v1/messages` (JSON, or SSE events `message_start`, `content_block_start/delta/stop`, `message_delta`, `message_stop`), `GET /v1/models` | `http://127.0.0.1:PORT` |
//! | [`Wire::Ollama`] | `POST /api/chat` (JSON, or NDJSON stream), `POST /api/embed`, `GET /api/tags` | `http://127.0.0.1:PORT` |
//!
//! A test scripts what the next calls answer with a queue of [`Reply`]s (text, tool calls,
//! an HTTP status with headers such as 429 + `Retry-After`, a delay, malformed JSON, a hang,
//! a stream that stalls), and reads back every request received ([`Recorded`]: method, path,
//! headers, JSON body) to assert on the wire format and on which key was sent. Concurrent
//! callers can be answered from the request itself ([`FakeProvider::respond_with`]). When the queue
//! is empty the default reply answers (`Reply::text("ok")` unless changed). Streaming is chosen
//! the way each real API chooses it (`"stream": true`; for Ollama, unless `"stream": false`).
//!
//! ```no_run
//! # async fn demo() {
//! use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
//! let fake = FakeProvider::start(Wire::Anthropic).await;
//! fake.push(Reply::tool_call("get_weather", serde_json::json!({"city": "Paris"})));
//! fake.push(Reply::text("It is sunny."));
//! // ... point ANTHROPIC_BASE_URL at fake.base_url() and run the code under test ...
//! let first = &fake.requests()[0];
//! assert_eq!(first.header("anthropic-version"), Some("2023-06-01"));
//! # }
//! ```
//!
//! [`FakeProvider::start_canned`] serves one precomputed answer with no recording and no locks,
//! for benchmarks (well over 100,000 requests/s on two cores).

mod anthropic;
mod ollama;
mod openai;
mod server;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Which provider API a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Chat Completions; DeepSeek speaks the same.
    OpenAi,
    Anthropic,
    Ollama,
}

/// A tool call the fake model makes.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeToolCall {
    pub id: String,
    pub name: String,
    /// A JSON object.
    pub arguments: Value,
}

/// What a scripted reply contains.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// An assistant text answer (streamed in several deltas when the request streams).
    Text(String),
    /// Tool calls, optionally after some text.
    ToolCalls {
        text: String,
        calls: Vec<FakeToolCall>,
    },
    /// Embedding vectors; `None` derives one deterministic vector per input.
    Embeddings(Option<Vec<Vec<f32>>>),
    /// Exactly this body (usually with a non-2xx status): an error the provider would send.
    Raw(String),
    /// A 200 whose body is not valid JSON (or, when streaming, an event that is not).
    Malformed,
    /// Never answers; the fake notes when the caller gives up (see [`FakeProvider::cancelled`]).
    Hang,
    /// Streams this text, then stalls forever without finishing the stream.
    StallStream(String),
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub body: ReplyBody,
    /// HTTP status; 200 unless set.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Waited before answering.
    pub delay: Duration,
    /// Input and output tokens reported.
    pub usage: (u32, u32),
    /// The finish reason in the provider's own vocabulary (`length`, `max_tokens`…); the
    /// natural one for the body when `None`.
    pub finish: Option<String>,
}

impl Reply {
    fn with_body(body: ReplyBody) -> Reply {
        Reply {
            body,
            status: 200,
            headers: Vec::new(),
            delay: Duration::ZERO,
            usage: (10, 5),
            finish: None,
        }
    }

    pub fn text(text: impl Into<String>) -> Reply {
        Reply::with_body(ReplyBody::Text(text.into()))
    }

    /// One tool call with a generated id (`call_1`, `toolu_1`… per wire).
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Reply {
        Reply::tool_calls(vec![FakeToolCall {
            id: String::new(),
            name: name.into(),
            arguments,
        }])
    }

    /// Several tool calls; empty ids are generated.
    pub fn tool_calls(calls: Vec<FakeToolCall>) -> Reply {
        Reply::with_body(ReplyBody::ToolCalls {
            text: String::new(),
            calls,
        })
    }

    /// Text that precedes the tool calls of this reply.
    pub fn with_text(mut self, before: impl Into<String>) -> Reply {
        if let ReplyBody::ToolCalls { text, .. } = &mut self.body {
            *text = before.into();
        }
        self
    }

    pub fn embeddings(vectors: Vec<Vec<f32>>) -> Reply {
        Reply::with_body(ReplyBody::Embeddings(Some(vectors)))
    }

    /// An error status with the provider's usual error body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::with_body(ReplyBody::Raw(String::new()))
        }
    }

    /// An error status with exactly this body.
    pub fn raw(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            ..Reply::with_body(ReplyBody::Raw(body.into()))
        }
    }

    /// 429 with `Retry-After: seconds`.
    pub fn rate_limited(retry_after_seconds: u32) -> Reply {
        Reply::status(429).header("retry-after", retry_after_seconds.to_string())
    }

    pub fn malformed() -> Reply {
        Reply::with_body(ReplyBody::Malformed)
    }

    pub fn hang() -> Reply {
        Reply::with_body(ReplyBody::Hang)
    }

    pub fn stall_stream(text: impl Into<String>) -> Reply {
        Reply::with_body(ReplyBody::StallStream(text.into()))
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn usage(mut self, input: u32, output: u32) -> Reply {
        self.usage = (input, output);
        self
    }

    pub fn finish(mut self, reason: impl Into<String>) -> Reply {
        self.finish = Some(reason.into());
        self
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
    pub raw_body: String,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Chooses a reply from the request body (`None`: the queue or the default answers).
pub type Responder = Arc<dyn Fn(&Value) -> Option<Reply> + Send + Sync>;

pub(crate) struct State {
    pub wire: Wire,
    pub responder: Mutex<Option<Responder>>,
    pub queue: Mutex<VecDeque<Reply>>,
    pub default: Mutex<Reply>,
    pub requests: Mutex<Vec<Recorded>>,
    pub required_key: Mutex<Option<String>>,
    pub models: Mutex<Vec<String>>,
    pub embedding_dimensions: AtomicUsize,
    /// Requests whose caller went away before the answer was complete.
    pub cancelled: AtomicUsize,
    /// Canned mode: precomputed (non-streaming, streaming) answers, nothing recorded.
    pub canned: Option<(bytes::Bytes, bytes::Bytes)>,
    pub changed: tokio::sync::Notify,
}

impl State {
    pub fn next_reply(&self, body: &Value) -> Reply {
        let responder = self.responder.lock().ok().and_then(|r| r.clone());
        if let Some(reply) = responder.and_then(|r| r(body)) {
            return reply;
        }
        let queued = self.queue.lock().map(|mut q| q.pop_front()).ok().flatten();
        queued.unwrap_or_else(|| {
            self.default
                .lock()
                .map(|d| d.clone())
                .unwrap_or_else(|_| Reply::text("ok"))
        })
    }

    pub fn note_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// A running fake provider. Dropping it stops the server.
pub struct FakeProvider {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeProvider {
    /// Starts a scripted, recording fake.
    pub async fn start(wire: Wire) -> FakeProvider {
        Self::start_with(wire, None).await
    }

    /// Starts a fake that answers every chat request with one precomputed reply (text "ok",
    /// 10 input and 5 output tokens), records nothing and takes no lock: for benchmarks.
    pub async fn start_canned(wire: Wire) -> FakeProvider {
        let canned = server::canned(wire);
        Self::start_with(wire, Some(canned)).await
    }

    async fn start_with(wire: Wire, canned: Option<(bytes::Bytes, bytes::Bytes)>) -> FakeProvider {
        let state = Arc::new(State {
            wire,
            responder: Mutex::new(None),
            queue: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::text("ok")),
            requests: Mutex::new(Vec::new()),
            required_key: Mutex::new(None),
            models: Mutex::new(default_models(wire)),
            embedding_dimensions: AtomicUsize::new(8),
            cancelled: AtomicUsize::new(0),
            canned,
            changed: tokio::sync::Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        let addr = listener.local_addr().expect("fake provider address");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(server::serve(listener, state.clone(), stopped));
        FakeProvider {
            addr,
            state,
            stop: Some(stop),
        }
    }

    pub fn wire(&self) -> Wire {
        self.state.wire
    }

    /// The base URL the provider's SDKs expect: with `/v1` for OpenAI, without for the others.
    pub fn base_url(&self) -> String {
        match self.state.wire {
            Wire::OpenAi => format!("http://{}/v1", self.addr),
            Wire::Anthropic | Wire::Ollama => format!("http://{}", self.addr),
        }
    }

    /// Queues a reply for the next generation request (chat or embeddings).
    pub fn push(&self, reply: Reply) -> &Self {
        if let Ok(mut q) = self.state.queue.lock() {
            q.push_back(reply);
        }
        self
    }

    /// Answers from the request itself: `f` sees each generation request's JSON body and
    /// returns the reply, or `None` to fall back to the queue and the default. For tests whose
    /// concurrent callers (several agents, several executors) make the order of requests
    /// unpredictable.
    pub fn respond_with(&self, f: impl Fn(&Value) -> Option<Reply> + Send + Sync + 'static) {
        if let Ok(mut r) = self.state.responder.lock() {
            *r = Some(Arc::new(f));
        }
    }

    /// The reply used when the queue is empty.
    pub fn set_default(&self, reply: Reply) {
        if let Ok(mut d) = self.state.default.lock() {
            *d = reply;
        }
    }

    /// Refuses (401, with the provider's error body quoting the key received) any request that
    /// does not carry this key.
    pub fn require_key(&self, key: impl Into<String>) {
        if let Ok(mut k) = self.state.required_key.lock() {
            *k = Some(key.into());
        }
    }

    /// Models listed by `/v1/models` or `/api/tags`.
    pub fn set_models(&self, models: Vec<String>) {
        if let Ok(mut m) = self.state.models.lock() {
            *m = models;
        }
    }

    /// Dimension of derived embedding vectors (default 8).
    pub fn set_embedding_dimensions(&self, n: usize) {
        self.state.embedding_dimensions.store(n, Ordering::SeqCst);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Replies still queued.
    pub fn pending_replies(&self) -> usize {
        self.state.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// How many requests were abandoned by their caller (connection closed) before the fake
    /// finished answering.
    pub fn cancelled(&self) -> usize {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests were abandoned; false on timeout.
    pub async fn wait_cancelled(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            if self.cancelled() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.cancelled() >= n;
            }
        }
    }

    /// Waits until at least `n` requests arrived; false on timeout.
    pub async fn wait_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            if self.request_count() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.request_count() >= n;
            }
        }
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn default_models(wire: Wire) -> Vec<String> {
    match wire {
        Wire::OpenAi => vec!["gpt-4o-mini".into(), "text-embedding-3-small".into()],
        Wire::Anthropic => vec!["claude-haiku-4-5-20251001".into()],
        Wire::Ollama => vec!["llama3.2".into(), "nomic-embed-text".into()],
    }
}

/// A deterministic vector for `input` (same input, same vector), unit length.
pub fn derived_embedding(input: &str, dimensions: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = Vec::with_capacity(dimensions);
    for b in input.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    for i in 0..dimensions {
        h ^= i as u64;
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        out.push(((h >> 40) as f32 / (1u64 << 24) as f32) - 0.5);
    }
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    out.iter_mut().for_each(|x| *x /= norm);
    out
}

/// Splits a text into the deltas a stream sends (about one word each).
pub(crate) fn deltas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(current);
    }
    out
}

/// Tool-call arguments as a stream sends them: in two fragments, cut at the character boundary
/// nearest below the middle.
pub(crate) fn halves(s: &str) -> [&str; 2] {
    let mid = s.len() / 2;
    let cut = (0..=mid)
        .rev()
        .find(|c| s.is_char_boundary(*c))
        .unwrap_or(0);
    [&s[..cut], &s[cut..]]
}
