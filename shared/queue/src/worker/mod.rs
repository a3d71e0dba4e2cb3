//! The worker runtime: claims jobs of the configured queues and runs their handlers.
//!
//! Per queue, a producer claims jobs in batches into a small local buffer (prefetch, like
//! Graphile Worker's local queue) and `concurrency` runners take them from it. Completions are
//! recorded in batches by a completer; failures and snoozes one by one. In single-row mode
//! (claim batch 1, `completion_batch` 1) there is no producer: each runner records its job's
//! completion and claims its next job in one statement (one round trip, one commit per job). A heartbeat extends
//! the leases of every held job; a maintenance loop rescues expired leases and purges old
//! final jobs. Shutdown stops claiming, gives buffered jobs back at once, lets running
//! handlers finish until a deadline, then cancels and releases the rest.

mod completer;
mod context;
mod heartbeat;
mod producer;
mod registry;
mod runner;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gathering_core::Shutdown;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::QueueError;
use crate::job::{Job, JobId, channel, validate_queue_name};
use crate::store::Queue;

pub use context::{HandlerResult, JobContext, JobError, Outcome};
pub use registry::{KindOptions, Registry};

/// One queue a worker serves.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub name: String,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Jobs claimed per statement, and the size of the local buffer.
    pub batch: usize,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub queues: Vec<QueueConfig>,
    /// How long a claim holds a job without a heartbeat.
    pub lease: Duration,
    /// Backstop poll when no notification arrives.
    pub poll_interval: Duration,
    /// How long shutdown waits for running handlers before cancelling them.
    pub shutdown_timeout: Duration,
    /// How often this worker looks for expired leases (of any worker).
    pub rescue_interval: Duration,
    /// Completed jobs are deleted after this long; discarded and cancelled ones after
    /// `retention_failed`.
    pub retention_completed: Duration,
    pub retention_failed: Duration,
    /// The lease owner name; default `hostname:pid:random`.
    pub owner: Option<String>,
    /// Most completions recorded by one statement (1 = one statement per job).
    pub completion_batch: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            queues: vec![QueueConfig {
                name: "default".into(),
                concurrency: 10,
                batch: 10,
            }],
            lease: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
            rescue_interval: Duration::from_secs(1),
            retention_completed: Duration::from_secs(3600),
            retention_failed: Duration::from_secs(7 * 24 * 3600),
            owner: None,
            completion_batch: 1000,
        }
    }
}

/// Counters a worker keeps (for `/health`, metrics and benchmarks).
#[derive(Debug, Default)]
pub struct Stats {
    pub claimed: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub refused: AtomicU64,
    pub released: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.claimed.load(Ordering::Relaxed),
            self.completed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.released.load(Ordering::Relaxed),
        )
    }
}

/// A job this worker holds (buffered or running).
struct Held {
    cancel: CancellationToken,
}

/// One queue's local state.
struct Lane {
    config: QueueConfig,
    buffer: Mutex<VecDeque<Job>>,
    /// Wakes idle runners when jobs are buffered.
    job_ready: Notify,
    /// Wakes the producer (or, in single-row mode, one idle runner): jobs may be available.
    wake: Notify,
    /// Tells the producer a runner took a job: there is room in the buffer.
    room: Notify,
}

impl Lane {
    /// Single-row mode (claim batch 1, one completion per statement): no producer; each
    /// runner claims its next job in the statement that completes its previous one.
    fn self_fed(&self, config: &WorkerConfig) -> bool {
        self.config.batch == 1 && config.completion_batch <= 1
    }

    fn buffered(&self) -> usize {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

struct Shared {
    queue: Queue,
    owner: String,
    config: WorkerConfig,
    registry: Registry,
    held: Mutex<HashMap<JobId, Held>>,
    lanes: HashMap<String, Arc<Lane>>,
    stats: Arc<Stats>,
    /// Stops claiming and taking new jobs from buffers.
    stop_taking: CancellationToken,
}

impl Shared {
    fn hold(&self, job: &Job) -> CancellationToken {
        let cancel = CancellationToken::new();
        self.held.lock().unwrap_or_else(|p| p.into_inner()).insert(
            job.id,
            Held {
                cancel: cancel.clone(),
            },
        );
        cancel
    }

    fn held_token(&self, id: JobId) -> Option<CancellationToken> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|h| h.cancel.clone())
    }

    fn unhold(&self, ids: &[JobId]) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            held.remove(id);
        }
    }

    fn held_ids(&self) -> Vec<JobId> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn cancel_held(&self, id: JobId) {
        if let Some(h) = self.held.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            h.cancel.cancel();
        }
    }
}

/// A running worker.
pub struct WorkerHandle {
    pub owner: String,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Waits until the worker stopped (after its shutdown signal), leases settled.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

pub struct Worker;

impl Worker {
    /// Starts a worker. `database_url` is used for the `LISTEN` connection.
    pub async fn start(
        queue: Queue,
        database_url: &str,
        registry: Registry,
        config: WorkerConfig,
        shutdown: Shutdown,
    ) -> Result<WorkerHandle, QueueError> {
        for q in &config.queues {
            validate_queue_name(&q.name)?;
        }
        let owner = config.owner.clone().unwrap_or_else(default_owner);
        let lanes: HashMap<String, Arc<Lane>> = config
            .queues
            .iter()
            .map(|q| {
                let lane = Lane {
                    config: QueueConfig {
                        name: q.name.clone(),
                        concurrency: q.concurrency.max(1),
                        batch: q.batch.max(1),
                    },
                    buffer: Mutex::new(VecDeque::new()),
                    job_ready: Notify::new(),
                    wake: Notify::new(),
                    room: Notify::new(),
                };
                (q.name.clone(), Arc::new(lane))
            })
            .collect();

        let mut channels: Vec<String> = lanes.keys().map(|q| channel(q)).collect();
        channels.push("queue_cancel".into());
        let channel_refs: Vec<&str> = channels.iter().map(String::as_str).collect();
        let listener_stop = Shutdown::new();
        let listener =
            gathering_db::Listener::start(database_url, &channel_refs, listener_stop.clone())
                .await?;

        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            queue,
            owner: owner.clone(),
            config,
            registry,
            held: Mutex::new(HashMap::new()),
            lanes,
            stats: stats.clone(),
            stop_taking: CancellationToken::new(),
        });
        let task = tokio::spawn(run(shared, listener, listener_stop, shutdown));
        tracing::info!(owner, "worker started");
        Ok(WorkerHandle { owner, stats, task })
    }
}

fn default_owner() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

async fn run(
    shared: Arc<Shared>,
    listener: gathering_db::Listener,
    listener_stop: Shutdown,
    shutdown: Shutdown,
) {
    let (done_tx, done_rx) = mpsc::channel(4096);
    let completer = tokio::spawn(completer::run(shared.clone(), done_rx));
    let dispatcher = tokio::spawn(dispatch_notifications(shared.clone(), listener));
    let background = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat::run(shared.clone(), background.clone()));
    let maintenance = tokio::spawn(heartbeat::maintain(shared.clone(), background.clone()));

    let mut producers = Vec::new();
    let mut runners = tokio::task::JoinSet::new();
    for lane in shared.lanes.values() {
        producers.push(tokio::spawn(producer::run(shared.clone(), lane.clone())));
        for _ in 0..lane.config.concurrency {
            runners.spawn(runner::run(shared.clone(), lane.clone(), done_tx.clone()));
        }
    }
    drop(done_tx);

    shutdown.wait().await;
    tracing::info!(owner = shared.owner, "worker stopping: no new jobs");
    shared.stop_taking.cancel();
    for p in producers {
        let _ = p.await;
    }
    // Jobs claimed but not started go back at once.
    let buffered: Vec<JobId> = shared
        .lanes
        .values()
        .flat_map(|lane| {
            let mut b = lane.buffer.lock().unwrap_or_else(|p| p.into_inner());
            b.drain(..).map(|j| j.id).collect::<Vec<_>>()
        })
        .collect();
    release(&shared, &buffered).await;

    // Running handlers may finish until the deadline…
    let deadline = tokio::time::sleep(shared.config.shutdown_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = runners.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                // …then they are asked to stop, and what remains is given back.
                let ids = shared.held_ids();
                for id in &ids {
                    shared.cancel_held(*id);
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while runners.join_next().await.is_some() {}
                }).await;
                runners.abort_all();
                while runners.join_next().await.is_some() {}
                break;
            }
        }
    }
    let _ = completer.await;
    let leftover = shared.held_ids();
    release(&shared, &leftover).await;
    background.cancel();
    listener_stop.trigger();
    let _ = heartbeat.await;
    let _ = maintenance.await;
    dispatcher.abort();
    tracing::info!(owner = shared.owner, "worker stopped");
}

async fn release(shared: &Shared, ids: &[JobId]) {
    if ids.is_empty() {
        return;
    }
    match shared.queue.release(&shared.owner, ids).await {
        Ok(n) => {
            shared.stats.released.fetch_add(n, Ordering::Relaxed);
            tracing::info!(count = n, "released leased jobs");
        }
        Err(e) => tracing::warn!(error = %e, "releasing jobs failed; their leases will expire"),
    }
    shared.unhold(ids);
}

/// Routes notifications: a queue's channel wakes its producer; `queue_cancel` stops a job.
async fn dispatch_notifications(shared: Arc<Shared>, mut listener: gathering_db::Listener) {
    use gathering_db::listen::ListenerEvent;
    while let Some(event) = listener.recv().await {
        match event {
            ListenerEvent::Notification(n) if n.channel == "queue_cancel" => {
                if let Ok(id) = n.payload.parse::<JobId>() {
                    shared.cancel_held(id);
                }
            }
            ListenerEvent::Notification(n) => {
                if let Some(lane) = n
                    .channel
                    .strip_prefix("queue_")
                    .and_then(|q| shared.lanes.get(q))
                {
                    lane.wake.notify_one();
                }
            }
            ListenerEvent::Reconnected => {
                for lane in shared.lanes.values() {
                    lane.wake.notify_one();
                }
            }
        }
    }
}
