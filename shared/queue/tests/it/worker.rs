//! The worker runtime against a real PostgreSQL, including a worker process killed with SIGKILL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_queue::{
    JobError, JobState, KindOptions, NewJob, Outcome, Queue, Registry, Worker, WorkerConfig,
};
use serde_json::json;

use crate::helpers::{config, setup, wait_state};

async fn start(
    ctx: &crate::helpers::Ctx,
    registry: Registry,
    config: WorkerConfig,
) -> (Shutdown, gathering_queue::WorkerHandle) {
    let shutdown = Shutdown::new();
    let handle = Worker::start(
        ctx.queue.clone(),
        &ctx.db.url,
        registry,
        config,
        shutdown.clone(),
    )
    .await
    .unwrap();
    (shutdown, handle)
}

#[tokio::test]
async fn heavy_eight_workers_never_run_a_job_twice_at_once() {
    let ctx = setup().await;
    const JOBS: usize = 400;
    // job id → (times started, currently running)
    let seen: Arc<Mutex<HashMap<i64, (usize, bool)>>> = Arc::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let mut registry = Registry::new();
        let (seen, overlaps) = (seen.clone(), overlaps.clone());
        registry.register("work", move |ctx| {
            let (seen, overlaps) = (seen.clone(), overlaps.clone());
            async move {
                {
                    let mut s = seen.lock().unwrap();
                    let e = s.entry(ctx.job.id).or_insert((0, false));
                    if e.1 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    *e = (e.0 + 1, true);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                seen.lock().unwrap().get_mut(&ctx.job.id).unwrap().1 = false;
                Ok(Outcome::Completed)
            }
        });
        let mut cfg = config("default", 4, 4);
        cfg.owner = Some(format!("worker-{w}"));
        cfg.poll_interval = Duration::from_millis(100);
        workers.push(start(&ctx, registry, cfg).await);
    }
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| NewJob::new("work", json!({ "i": i })))
        .collect();
    ctx.queue.enqueue_many(&jobs).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let client = ctx.db.pool(1).get().await.unwrap();
    loop {
        let done: i64 = client
            .query_one(
                "SELECT count(*) FROM queue.jobs WHERE state = 'completed'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if done as usize == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {JOBS} completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (shutdown, handle) in workers {
        shutdown.trigger();
        handle.wait().await;
    }
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "a job ran twice at once"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), JOBS);
        assert!(
            seen.values().all(|(n, _)| *n == 1),
            "every job ran exactly once"
        );
    }
    let attempts: i32 = client
        .query_one("SELECT max(attempt) FROM queue.jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn a_lost_notification_is_covered_by_polling() {
    let ctx = setup().await;
    let mut registry = Registry::new();
    registry.register("k", |_| async { Ok(Outcome::Completed) });
    let mut cfg = config("default", 1, 1);
    cfg.poll_interval = Duration::from_millis(300);
    let (shutdown, handle) = start(&ctx, registry, cfg).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Inserted behind the queue's back: no NOTIFY at all.
    let id: i64 = ctx
        .db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO queue.jobs (kind) VALUES ('k') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    wait_state(&ctx.queue, id, JobState::Completed, Duration::from_secs(5)).await;
    shutdown.trigger();
    handle.wait().await;
}

#[tokio::test]
async fn errors_and_panics_are_recorded_and_retried() {
    let ctx = setup().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    let c = calls.clone();
    let fast = KindOptions {
        backoff: gathering_queue::Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(50),
            jitter: 0.0,
        },
        ..Default::default()
    };
    registry.register_with("flaky", fast, move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => Err(JobError::retry("transient failure")),
                1 => panic!("handler exploded"),
                _ => Ok(Outcome::Completed),
            }
        }
    });
    registry.register("doomed", |_| async { Err(JobError::discard("bad input")) });
    let mut cfg = config("default", 2, 2);
    cfg.poll_interval = Duration::from_millis(50);
    let (shutdown, handle) = start(&ctx, registry, cfg).await;
    let flaky = ctx
        .queue
        .enqueue(NewJob::new("flaky", json!({})))
        .await
        .unwrap()
        .id;
    let doomed = ctx
        .queue
        .enqueue(NewJob::new("doomed", json!({})))
        .await
        .unwrap()
        .id;

    let rec = wait_state(
        &ctx.queue,
        flaky,
        JobState::Completed,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(rec.attempt, 3);
    let errors = rec.errors.as_array().unwrap();
    assert_eq!(errors[0]["error"], "transient failure");
    assert!(
        errors[1]["error"]
            .as_str()
            .unwrap()
            .contains("handler exploded"),
        "{errors:?}"
    );
    let rec = wait_state(
        &ctx.queue,
        doomed,
        JobState::Discarded,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(rec.attempt, 1, "a discard does not retry");
    assert_eq!(rec.last_error.as_deref(), Some("bad input"));
    shutdown.trigger();
    handle.wait().await;
}

#[tokio::test]
async fn a_handler_past_its_timeout_is_cancelled_and_the_attempt_fails() {
    let ctx = setup().await;
    let observed_cancel = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    let seen = observed_cancel.clone();
    let options = KindOptions {
        timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    registry.register_with("slow", options, move |ctx| {
        let seen = seen.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(30)) => Ok(Outcome::Completed),
                _ = ctx.cancel.cancelled() => {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Err(JobError::retry("cancelled"))
                }
            }
        }
    });
    let (shutdown, handle) = start(&ctx, registry, config("default", 1, 1)).await;
    let id = ctx
        .queue
        .enqueue(NewJob::new("slow", json!({})).max_attempts(1))
        .await
        .unwrap()
        .id;
    let rec = wait_state(&ctx.queue, id, JobState::Discarded, Duration::from_secs(10)).await;
    assert!(rec.last_error.unwrap().contains("timed out"));
    assert_eq!(
        observed_cancel.load(Ordering::SeqCst),
        1,
        "the handler saw its cancellation"
    );
    shutdown.trigger();
    handle.wait().await;
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_handler() {
    let ctx = setup().await;
    let started = Arc::new(tokio::sync::Notify::new());
    let stopped = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    let (st, sp) = (started.clone(), stopped.clone());
    registry.register("long", move |ctx| {
        let (st, sp) = (st.clone(), sp.clone());
        async move {
            st.notify_one();
            ctx.cancel.cancelled().await;
            sp.fetch_add(1, Ordering::SeqCst);
            Ok(Outcome::Completed)
        }
    });
    let (shutdown, handle) = start(&ctx, registry, config("default", 1, 1)).await;
    let id = ctx
        .queue
        .enqueue(NewJob::new("long", json!({})))
        .await
        .unwrap()
        .id;
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .unwrap();
    assert_eq!(ctx.queue.cancel(id).await.unwrap(), Some(JobState::Running));
    let deadline = Instant::now() + Duration::from_secs(5);
    while stopped.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the handler was not told");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rec = ctx.queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        rec.state,
        JobState::Cancelled,
        "the late completion did not overwrite the cancel"
    );
    shutdown.trigger();
    handle.wait().await;
}

#[tokio::test]
async fn shutdown_releases_buffered_jobs_and_finishes_the_running_one() {
    let ctx = setup().await;
    let started = Arc::new(tokio::sync::Notify::new());
    let mut registry = Registry::new();
    let st = started.clone();
    registry.register("job", move |_| {
        let st = st.clone();
        async move {
            st.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(Outcome::Completed)
        }
    });
    let jobs: Vec<NewJob> = (0..10).map(|_| NewJob::new("job", json!({}))).collect();
    let ids: Vec<i64> = ctx
        .queue
        .enqueue_many(&jobs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let (shutdown, handle) = start(&ctx, registry, config("default", 1, 10)).await;
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .unwrap();
    shutdown.trigger();
    handle.wait().await;

    let client = ctx.db.pool(1).get().await.unwrap();
    let rows = client
        .query(
            "SELECT state::text, attempt, lease_owner FROM queue.jobs WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap();
    let completed = rows
        .iter()
        .filter(|r| r.get::<_, &str>(0) == "completed")
        .count();
    let available: Vec<_> = rows
        .iter()
        .filter(|r| r.get::<_, &str>(0) == "available")
        .collect();
    assert_eq!(completed, 1, "the running job finished");
    assert_eq!(available.len(), 9, "buffered jobs went back at once");
    assert!(
        available
            .iter()
            .all(|r| r.get::<_, i32>(1) == 0 && r.get::<_, Option<&str>>(2).is_none())
    );
}

/// Run by `a_worker_killed_with_sigkill_loses_its_job_to_another` in a child process.
#[tokio::test]
#[ignore = "runs only as the child process of a crash test"]
async fn child_worker_process() {
    let Ok(url) = std::env::var("QUEUE_CHILD_DATABASE_URL") else {
        return;
    };
    let pool = gathering_db::connect(&url, &Default::default()).unwrap();
    let mut registry = Registry::new();
    registry.register("crash", |_| async {
        println!("CHILD_STARTED_JOB");
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok(Outcome::Completed)
    });
    let mut cfg = config("default", 1, 1);
    cfg.owner = Some("doomed-worker".into());
    cfg.lease = Duration::from_secs(2);
    let shutdown = Shutdown::new();
    let _handle = Worker::start(Queue::new(pool), &url, registry, cfg, shutdown)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn heavy_a_worker_killed_with_sigkill_loses_its_job_to_another() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let ctx = setup().await;
    let id = ctx
        .queue
        .enqueue(NewJob::new("crash", json!({})))
        .await
        .unwrap()
        .id;

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "worker::child_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("QUEUE_CHILD_DATABASE_URL", &ctx.db.url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("CHILD_STARTED_JOB") {
                return;
            }
        }
        panic!("child exited before starting the job");
    })
    .await
    .expect("child started the job");
    let rec = ctx.queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.lease_owner.as_deref()),
        (JobState::Running, Some("doomed-worker"))
    );

    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    let killed_at = Instant::now();

    let completions = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    let c = completions.clone();
    registry.register("crash", move |_| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(Outcome::Completed)
        }
    });
    let (shutdown, handle) = start(&ctx, registry, config("default", 1, 1)).await;
    let rec = wait_state(&ctx.queue, id, JobState::Completed, Duration::from_secs(20)).await;
    let recovered_in = killed_at.elapsed();
    assert_eq!(rec.attempt, 2);
    assert_eq!(completions.load(Ordering::SeqCst), 1);
    assert!(
        rec.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("lease expired")
    );
    // The zombie coming back late cannot record anything.
    assert!(!ctx.queue.complete("doomed-worker", id, 1).await.unwrap());
    assert_eq!(
        ctx.queue.get(id).await.unwrap().unwrap().state,
        JobState::Completed
    );
    println!("recovered {recovered_in:?} after SIGKILL (lease 2 s)");
    shutdown.trigger();
    handle.wait().await;
}

/// Single-row mode (claim batch 1, one completion per statement): runners complete and claim
/// in one statement. Many of them at once must neither deadlock (a failed statement leaves its
/// job to be rescued and run again) nor run a job twice.
#[tokio::test]
async fn heavy_single_row_workers_complete_and_claim_without_deadlocks() {
    let ctx = setup().await;
    const JOBS: usize = 1500;
    let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..3 {
        let mut registry = Registry::new();
        let runs = runs.clone();
        registry.register("work", move |ctx| {
            let runs = runs.clone();
            async move {
                *runs.lock().unwrap().entry(ctx.job.id).or_insert(0) += 1;
                Ok(Outcome::Completed)
            }
        });
        let mut cfg = config("default", 8, 1);
        cfg.completion_batch = 1;
        cfg.owner = Some(format!("single-{w}"));
        cfg.poll_interval = Duration::from_millis(200);
        workers.push(start(&ctx, registry, cfg).await);
    }
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| NewJob::new("work", json!({ "i": i })))
        .collect();
    ctx.queue.enqueue_many(&jobs).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let client = ctx.db.pool(1).get().await.unwrap();
    loop {
        let done: i64 = client
            .query_one(
                "SELECT count(*) FROM queue.jobs WHERE state = 'completed'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if done as usize == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of {JOBS} completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut completed = 0;
    for (shutdown, handle) in workers {
        shutdown.trigger();
        let stats = handle.stats.clone();
        handle.wait().await;
        completed += stats.completed.load(Ordering::SeqCst);
    }
    assert_eq!(completed as usize, JOBS, "every completion recorded once");
    {
        let runs = runs.lock().unwrap();
        assert_eq!(runs.len(), JOBS);
        assert!(runs.values().all(|n| *n == 1), "every job ran exactly once");
    }
    let attempts: i32 = client
        .query_one("SELECT max(attempt) FROM queue.jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        attempts, 1,
        "no attempt failed (a deadlock would retry one)"
    );
}
