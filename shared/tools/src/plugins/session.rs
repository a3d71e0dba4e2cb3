//! One process's MCP session with one plugin's server: connected on demand, supervised, and
//! stopped for good.
//!
//! A stdio server runs as a child in its own process group with a clean environment (PATH,
//! HOME, LANG, the manifest's `env` and `GATHERING_PLUGIN_CONFIG`; none of the service's
//! secrets). A streamable-HTTP server is reached through the outbound guard: the URL is checked
//! and the host resolved by the guard before connecting, and the client's resolver is the
//! guard's, so a name that later resolves elsewhere is refused too.
//!
//! The supervisor owns the connection: when the server exits (a crash, `kill -9`) it records
//! why and reconnects after the project's back-off (`gathering_core::backoff::Backoff`);
//! calls made meanwhile wait for the new connection within their own timeout. Stopping (plugin
//! disabled or unloaded, process shutting down) cancels the session and kills the process
//! group, so no server outlives what started it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gathering_core::backoff::Backoff;
use gathering_net::NetGuard;
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool as McpTool};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{Peer, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::manifest::{Limits, McpSpec};
use crate::error::ToolError;

/// Longest wait for a server to answer `initialize`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection that lived this long resets the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Everything needed to (re)connect to one plugin's server.
#[derive(Clone)]
pub struct Launch {
    pub plugin_id: String,
    pub spec: McpSpec,
    /// The plugin's folder: a stdio server's working directory.
    pub dir: Option<PathBuf>,
    pub config: Value,
    pub limits: Limits,
    pub guard: NetGuard,
}

#[derive(Clone)]
enum State {
    Connecting,
    Ready(Peer<RoleClient>),
    /// Waiting to reconnect: after the server exited (`error` None: calls wait), or after a
    /// failed connection (calls fail at once with the error).
    Retrying(Option<String>),
    Stopped,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Ready(_) => "running",
            State::Retrying(_) => "restarting",
            State::Stopped => "stopped",
        }
    }
}

#[derive(Default)]
struct Stats {
    pid: Option<u32>,
    restarts: u32,
    last_error: Option<String>,
    connected_at: Option<chrono::DateTime<chrono::Utc>>,
    calls: u64,
    failures: u64,
}

type Client = RunningService<RoleClient, ()>;

pub struct Session {
    launch: Launch,
    state: watch::Receiver<State>,
    stop: CancellationToken,
    slots: Arc<Semaphore>,
    stats: Arc<Mutex<Stats>>,
    done: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Session {
    /// Connects once (the error is returned, nothing keeps running on failure) and lists the
    /// server's tools; the session then supervises that connection.
    pub async fn connect(
        launch: Launch,
        backoff: Backoff,
    ) -> Result<(Arc<Session>, Vec<McpTool>), ToolError> {
        let (client, pid) = connect(&launch).await?;
        let tools =
            match tokio::time::timeout(CONNECT_TIMEOUT, client.peer().list_all_tools()).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    stop_client(client, pid).await;
                    return Err(ToolError::Failed(format!(
                        "listing the server's tools failed: {e}"
                    )));
                }
                Err(_) => {
                    stop_client(client, pid).await;
                    return Err(ToolError::Failed(
                        "the server did not list its tools in time".into(),
                    ));
                }
            };
        Ok((Self::supervise(launch, backoff, Some((client, pid))), tools))
    }

    /// A session that connects in the background (a call waits for it).
    pub fn start(launch: Launch, backoff: Backoff) -> Arc<Session> {
        Self::supervise(launch, backoff, None)
    }

    fn supervise(
        launch: Launch,
        backoff: Backoff,
        first: Option<(Client, Option<u32>)>,
    ) -> Arc<Session> {
        let (tx, rx) = watch::channel(State::Connecting);
        let session = Arc::new(Session {
            slots: Arc::new(Semaphore::new(launch.limits.max_concurrent_calls)),
            launch,
            state: rx,
            stop: CancellationToken::new(),
            stats: Arc::default(),
            done: Mutex::new(None),
        });
        let task = tokio::spawn(run(
            session.launch.clone(),
            backoff,
            tx,
            session.stop.clone(),
            session.stats.clone(),
            first,
        ));
        *session.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        session
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pid(&self) -> Option<u32> {
        self.stats().pid
    }

    /// Calls one tool of the server: waits for a free slot (at most `max_concurrent_calls` at
    /// once) and a live connection; the result is refused past `max_result_bytes`. The
    /// caller's timeout bounds all of it (the registry drops this future).
    pub async fn call(&self, tool: &str, input: Value) -> Result<CallToolResult, ToolError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| ToolError::Failed("the plugin is stopping".into()))?;
        let peer = self.ready_peer().await?;
        let arguments = match input {
            Value::Object(map) => Some(map),
            Value::Null => None,
            _ => {
                return Err(ToolError::InvalidInput(
                    "a plugin tool's input is an object".into(),
                ));
            }
        };
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = arguments;
        self.stats().calls += 1;
        let result = peer.call_tool(params).await.map_err(|e| {
            self.stats().failures += 1;
            ToolError::Failed(format!("plugin '{}': {e}", self.launch.plugin_id))
        })?;
        let size = serde_json::to_vec(&result.content)
            .map(|v| v.len())
            .unwrap_or(0)
            + result
                .structured_content
                .as_ref()
                .map(|s| s.to_string().len())
                .unwrap_or(0);
        if size > self.launch.limits.max_result_bytes {
            self.stats().failures += 1;
            return Err(ToolError::TooLarge(format!(
                "the plugin's result is {size} bytes, more than its limit of {}",
                self.launch.limits.max_result_bytes
            )));
        }
        Ok(result)
    }

    async fn ready_peer(&self) -> Result<Peer<RoleClient>, ToolError> {
        let mut rx = self.state.clone();
        loop {
            match &*rx.borrow_and_update() {
                State::Ready(peer) => return Ok(peer.clone()),
                State::Stopped => {
                    return Err(ToolError::Failed(format!(
                        "plugin '{}' is stopped",
                        self.launch.plugin_id
                    )));
                }
                State::Retrying(Some(error)) => return Err(ToolError::Failed(error.clone())),
                State::Connecting | State::Retrying(None) => {}
            }
            if rx.changed().await.is_err() {
                return Err(ToolError::Failed("the plugin session ended".into()));
            }
        }
    }

    /// `{session, pid, restarts, …}` for the health routes.
    pub fn health(&self) -> Value {
        let state = self.state.borrow().name();
        let s = self.stats();
        json!({
            "session": state,
            "healthy": state == "running",
            "pid": s.pid,
            "restarts": s.restarts,
            "last_error": s.last_error,
            "connected_at": s.connected_at.map(|t| t.to_rfc3339()),
            "calls": s.calls,
            "failures": s.failures,
            "calls_in_flight": self.launch.limits.max_concurrent_calls - self.slots.available_permits(),
            "max_concurrent_calls": self.launch.limits.max_concurrent_calls,
        })
    }

    /// Stops the session and kills the server's process group; returns once it is gone.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.slots.close();
        let task = self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The supervisor sees the cancellation and kills the process group.
        self.stop.cancel();
    }
}

/// The supervisor: keeps one connection alive until stopped.
fn lock(s: &Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run(
    launch: Launch,
    backoff: Backoff,
    state: watch::Sender<State>,
    stop: CancellationToken,
    stats: Arc<Mutex<Stats>>,
    mut first: Option<(Client, Option<u32>)>,
) {
    let mut attempt = 0i32;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let connected = match first.take() {
            Some(c) => Ok(c),
            None => {
                let _ = state.send(State::Connecting);
                tokio::select! {
                    r = connect(&launch) => r,
                    _ = stop.cancelled() => break,
                }
            }
        };
        let failure = match connected {
            Ok((client, pid)) => {
                let since = Instant::now();
                {
                    let mut s = lock(&stats);
                    s.pid = pid;
                    s.connected_at = Some(chrono::Utc::now());
                }
                let _ = state.send(State::Ready(client.peer().clone()));
                let token = client.cancellation_token();
                let mut waiting = Box::pin(client.waiting());
                tokio::select! {
                    _ = &mut waiting => {}
                    _ = stop.cancelled() => {
                        let _ = state.send(State::Stopped);
                        token.cancel();
                        let _ = tokio::time::timeout(Duration::from_secs(3), waiting).await;
                        kill_group(pid);
                        break;
                    }
                }
                // The server went away on its own: kill what is left of its group, then retry.
                kill_group(pid);
                let mut s = lock(&stats);
                s.restarts += 1;
                s.pid = None;
                s.last_error = Some("the server exited".into());
                tracing::warn!(plugin = %launch.plugin_id, restarts = s.restarts, "plugin server exited; restarting");
                if since.elapsed() >= STABLE_AFTER {
                    attempt = 0;
                }
                None
            }
            Err(e) => {
                tracing::warn!(plugin = %launch.plugin_id, error = %e, "plugin server did not start");
                lock(&stats).last_error = Some(e.to_string());
                Some(format!("plugin '{}': {e}", launch.plugin_id))
            }
        };
        attempt = attempt.saturating_add(1);
        let _ = state.send(State::Retrying(failure));
        tokio::select! {
            _ = tokio::time::sleep(backoff.delay(attempt)) => {}
            _ = stop.cancelled() => break,
        }
    }
    lock(&stats).pid = None;
    let _ = state.send(State::Stopped);
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The child leads its own group (process_group(0)): this reaches what it started too.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

async fn stop_client(client: Client, pid: Option<u32>) {
    let _ = tokio::time::timeout(Duration::from_secs(3), client.cancel()).await;
    kill_group(pid);
}

/// One connection attempt (with `initialize`), bounded in time.
async fn connect(launch: &Launch) -> Result<(Client, Option<u32>), ToolError> {
    match &launch.spec {
        McpSpec::Stdio { command, args, env } => {
            let cwd = launch.dir.clone().unwrap_or_else(std::env::temp_dir);
            // A relative path names a file of the plugin's folder; a bare name is looked up on PATH.
            let program = if command.contains('/') && !command.starts_with('/') {
                cwd.join(command).to_string_lossy().into_owned()
            } else {
                command.clone()
            };
            let mut cmd = tokio::process::Command::new(&program);
            cmd.args(args)
                .current_dir(&cwd)
                .env_clear()
                .envs(crate::process::base_env())
                .envs(env)
                .env("GATHERING_PLUGIN_ID", &launch.plugin_id)
                .env("GATHERING_PLUGIN_CONFIG", launch.config.to_string())
                .process_group(0)
                .kill_on_drop(true);
            let (transport, stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| ToolError::Failed(format!("cannot start '{program}': {e}")))?;
            let pid = transport.id();
            if let Some(stderr) = stderr {
                tokio::spawn(log_stderr(launch.plugin_id.clone(), stderr));
            }
            match tokio::time::timeout(CONNECT_TIMEOUT, ().serve(transport)).await {
                Ok(Ok(client)) => Ok((client, pid)),
                Ok(Err(e)) => {
                    kill_group(pid);
                    Err(ToolError::Failed(format!(
                        "the MCP server did not initialize: {e}"
                    )))
                }
                Err(_) => {
                    kill_group(pid);
                    Err(ToolError::Failed(
                        "the MCP server did not initialize in time".into(),
                    ))
                }
            }
        }
        McpSpec::Http { url, headers } => {
            let parsed = url::Url::parse(url)
                .map_err(|e| ToolError::InvalidInput(format!("invalid plugin URL: {e}")))?;
            let guard = &launch.guard;
            guard
                .check_url(&parsed)
                .map_err(|b| ToolError::Refused(b.to_string()))?;
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port_or_known_default().unwrap_or(443);
            guard.resolve(host, port).await.map_err(|e| match e {
                gathering_net::ResolveError::Blocked(b) => ToolError::Refused(b.to_string()),
                other => ToolError::Failed(other.to_string()),
            })?;
            gathering_core::tls::install_crypto_provider();
            let http = reqwest::Client::builder()
                .dns_resolver(guard.resolver())
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| ToolError::Failed(format!("cannot build the HTTP client: {e}")))?;
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.clone());
            let mut custom = HashMap::new();
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                    reqwest::header::HeaderValue::from_str(v),
                ) {
                    custom.insert(k, v);
                }
            }
            config.custom_headers = custom;
            config.max_json_response_size = launch.limits.max_result_bytes + 64 * 1024;
            config.max_sse_event_size = launch.limits.max_result_bytes + 64 * 1024;
            let transport = StreamableHttpClientTransport::with_client(http, config);
            match tokio::time::timeout(CONNECT_TIMEOUT, ().serve(transport)).await {
                Ok(Ok(client)) => Ok((client, None)),
                Ok(Err(e)) => Err(ToolError::Failed(format!(
                    "the MCP server at {url} did not initialize: {e}"
                ))),
                Err(_) => Err(ToolError::Failed(format!(
                    "the MCP server at {url} did not initialize in time"
                ))),
            }
        }
    }
}

/// A server's stderr, line by line into our logs (bounded per line).
async fn log_stderr(plugin: String, stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(1000).collect();
        tracing::debug!(plugin = %plugin, "{line}");
    }
}
