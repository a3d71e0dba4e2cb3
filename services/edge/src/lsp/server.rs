//! One language server process and the client side of its JSON-RPC: requests matched to
//! answers by id (each with a timeout), the server's own requests answered, diagnostics kept as
//! they are published, and documents kept in sync (`didOpen` once, then a full `didChange`
//! whenever the text a request brings differs from what the server has).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gathering_tools::ProjectRoot;
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc, oneshot};

use super::Language;
use super::protocol::{frame, read_message, uri_of};

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Result<Value, String>>>>>;

/// Diagnostics last published for a document, with the document version they are for.
#[derive(Clone)]
struct Published {
    version: i64,
    items: Value,
}

/// What the reader task shares with requesters.
#[derive(Default)]
struct Shared {
    /// The version of each open document, as last sent.
    versions: HashMap<String, i64>,
    diagnostics: HashMap<String, Published>,
}

struct Doc {
    version: i64,
    text: Arc<str>,
}

pub struct LspServer {
    pub language: Language,
    pub root: ProjectRoot,
    pub pid: i32,
    pub capabilities: Value,
    out: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicI64,
    alive: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    published: Arc<Notify>,
    docs: tokio::sync::Mutex<HashMap<String, Doc>>,
    last_used: Mutex<Instant>,
    child: Mutex<Option<Child>>,
    timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LspServer {
    /// Starts `argv` in the project root and runs the `initialize` handshake.
    pub async fn start(
        language: Language,
        argv: &[String],
        root: ProjectRoot,
        timeout: Duration,
    ) -> Result<Arc<LspServer>, String> {
        let (program, args) = argv.split_first().ok_or("no language server command")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(root.path())
            .env_clear()
            .envs(gathering_tools::process::base_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: runs in the child between fork and exec; prctl is a plain system call.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
            });
        }
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "The {} language server ({program}) is not installed on this server",
                language.name()
            ),
            _ => format!("Cannot start the {} language server: {e}", language.name()),
        })?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("language server pipes missing".into());
        };
        let (out, mut rx) = mpsc::channel::<Vec<u8>>(256);
        let alive = Arc::new(AtomicBool::new(true));
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if stdin.write_all(&bytes).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let server = Arc::new(LspServer {
            language,
            root,
            pid,
            capabilities: Value::Null,
            out,
            pending: Arc::default(),
            next_id: AtomicI64::new(1),
            alive: alive.clone(),
            shared: Arc::default(),
            published: Arc::new(Notify::new()),
            docs: tokio::sync::Mutex::new(HashMap::new()),
            last_used: Mutex::new(Instant::now()),
            child: Mutex::new(Some(child)),
            timeout,
        });
        spawn_reader(&server, stdout);
        let capabilities = server.initialize().await?;
        // The handshake is done before anyone else sees the server: set its capabilities.
        let mut server = server;
        match Arc::get_mut(&mut server) {
            Some(s) => s.capabilities = capabilities,
            None => tracing::debug!("language server shared before initialize returned"),
        }
        Ok(server)
    }

    async fn initialize(&self) -> Result<Value, String> {
        let root_uri = uri_of(self.root.path());
        let params = json!({
            "processId": std::process::id(),
            "rootUri": root_uri,
            "rootPath": self.root.path(),
            "workspaceFolders": [{"uri": root_uri, "name": "project"}],
            "capabilities": {
                "textDocument": {
                    "synchronization": {"dynamicRegistration": false, "didSave": false},
                    "completion": {"completionItem": {"snippetSupport": false,
                        "documentationFormat": ["markdown", "plaintext"]}},
                    "hover": {"contentFormat": ["markdown", "plaintext"]},
                    "definition": {"linkSupport": false},
                    "publishDiagnostics": {"versionSupport": true},
                },
                "workspace": {"configuration": true, "workspaceFolders": true},
            },
        });
        // Some servers index the project first: allow more time than for a request.
        let result = self
            .request_within("initialize", params, self.timeout * 2)
            .await?;
        self.notify("initialized", json!({})).await?;
        Ok(result.get("capabilities").cloned().unwrap_or(Value::Null))
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    async fn send(&self, msg: Value) -> Result<(), String> {
        self.out
            .send(frame(&msg))
            .await
            .map_err(|_| format!("the {} language server stopped", self.language.name()))
    }

    pub async fn notify(&self, method: &str, params: Value) -> Result<(), String> {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    pub async fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        self.request_within(method, params, self.timeout).await
    }

    async fn request_within(
        &self,
        method: &str,
        params: Value,
        within: Duration,
    ) -> Result<Value, String> {
        if !self.alive() {
            return Err(format!(
                "the {} language server stopped",
                self.language.name()
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(format!(
                "the {} language server stopped",
                self.language.name()
            )),
            Err(_) => {
                lock(&self.pending).remove(&id);
                let _ = self.notify("$/cancelRequest", json!({"id": id})).await;
                Err(format!(
                    "the {} language server did not answer {method} within {} ms",
                    self.language.name(),
                    within.as_millis()
                ))
            }
        }
    }

    /// Makes the server's copy of `abs` hold `text`; returns its URI and version.
    pub async fn sync(&self, abs: &Path, text: String) -> Result<(String, i64), String> {
        let uri = uri_of(abs);
        let mut docs = self.docs.lock().await;
        let version = match docs.get_mut(&uri) {
            Some(doc) if *doc.text == *text => return Ok((uri, doc.version)),
            Some(doc) => {
                doc.version += 1;
                doc.text = text.clone().into();
                lock(&self.shared).versions.insert(uri.clone(), doc.version);
                self.notify(
                    "textDocument/didChange",
                    json!({"textDocument": {"uri": uri, "version": doc.version},
                           "contentChanges": [{"text": text}]}),
                )
                .await?;
                doc.version
            }
            None => {
                docs.insert(
                    uri.clone(),
                    Doc {
                        version: 1,
                        text: text.clone().into(),
                    },
                );
                lock(&self.shared).versions.insert(uri.clone(), 1);
                self.notify(
                    "textDocument/didOpen",
                    json!({"textDocument": {"uri": uri, "languageId": self.language.language_id(abs),
                           "version": 1, "text": text}}),
                )
                .await?;
                1
            }
        };
        Ok((uri, version))
    }

    /// The diagnostics the server publishes for `uri` at `version` (or later).
    pub async fn diagnostics(&self, uri: &str, version: i64) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let wait = self.published.notified();
            if let Some(p) = lock(&self.shared).diagnostics.get(uri)
                && p.version >= version
            {
                return Ok(p.items.clone());
            }
            if !self.alive() {
                return Err(format!(
                    "the {} language server stopped",
                    self.language.name()
                ));
            }
            if tokio::time::timeout_at(deadline, wait).await.is_err() {
                return Err(format!(
                    "the {} language server published no diagnostics within {} ms",
                    self.language.name(),
                    self.timeout.as_millis()
                ));
            }
        }
    }

    /// Asks the server to exit, then kills its process group.
    pub async fn shutdown(&self) {
        if self.alive() {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = self.request("shutdown", Value::Null).await;
                let _ = self.notify("exit", Value::Null).await;
            })
            .await;
        }
        self.kill();
    }

    pub fn kill(&self) {
        self.alive.store(false, Ordering::Release);
        if self.pid > 0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.start_kill();
            // Reap it off the request path.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
}

impl Drop for LspServer {
    fn drop(&mut self) {
        if self.pid > 0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Reads the server's messages until its stdout closes (exit or crash): answers, requests from
/// the server, and diagnostics.
fn spawn_reader(server: &Arc<LspServer>, stdout: tokio::process::ChildStdout) {
    let pending = server.pending.clone();
    let alive = server.alive.clone();
    let shared = server.shared.clone();
    let published = server.published.clone();
    let out = server.out.clone();
    let name = server.language.name();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout);
        loop {
            let msg = match read_message(&mut reader).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(language = name, error = %e, "language server sent a bad message");
                    break;
                }
            };
            let method = msg.get("method").and_then(Value::as_str);
            match (method, msg.get("id")) {
                (None, Some(id)) => {
                    let Some(id) = id.as_i64() else { continue };
                    let Some(tx) = lock(&pending).remove(&id) else {
                        continue;
                    };
                    let r = match msg.get("error") {
                        Some(e) => Err(format!(
                            "the {name} language server answered an error: {}",
                            e.get("message")
                                .and_then(Value::as_str)
                                .unwrap_or("unknown")
                        )),
                        None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
                    };
                    let _ = tx.send(r);
                }
                (Some(m), Some(id)) => {
                    // A request from the server: configuration gets "no settings", the rest a
                    // plain success.
                    let result = if m == "workspace/configuration" {
                        let n = msg["params"]["items"].as_array().map_or(0, Vec::len);
                        Value::Array(vec![Value::Null; n])
                    } else {
                        Value::Null
                    };
                    let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
                    let _ = out.send(frame(&reply)).await;
                }
                (Some("textDocument/publishDiagnostics"), None) => {
                    let params = &msg["params"];
                    let Some(uri) = params["uri"].as_str() else {
                        continue;
                    };
                    let mut g = lock(&shared);
                    let current = g.versions.get(uri).copied().unwrap_or(0);
                    let version = params["version"].as_i64().unwrap_or(current);
                    g.diagnostics.insert(
                        uri.to_owned(),
                        Published {
                            version,
                            items: params["diagnostics"].clone(),
                        },
                    );
                    drop(g);
                    published.notify_waiters();
                }
                _ => {}
            }
        }
        alive.store(false, Ordering::Release);
        // Fail what is still waiting: dropping the senders ends their receivers.
        lock(&pending).clear();
        published.notify_waiters();
        tracing::info!(language = name, "language server stopped");
    });
}
