//! `GET /health/checks` (contract §2.1): real checks, each with a status, a message, a value
//! and its latency, run concurrently, each bounded by [`CHECK_TIMEOUT`]:
//!
//! | check | healthy | warning | critical |
//! |---|---|---|---|
//! | API Server | always (this answer) | | |
//! | Database | `SELECT 1` answers | | fails or times out |
//! | Auth Service, LLM Gateway | gRPC health `SERVING` | | not serving, unreachable |
//! | Executors, Schedulers | ≥ 1 live heartbeat (count) | | none |
//! | Job Queue | oldest waiting job < 60 s | < 300 s | older |
//! | LLM Providers | ≥ 1 provider with a usable model | none configured, or the gateway cannot say | |
//! | Disk Space (data directory) | < 80 % | < 90 % | ≥ 90 % or unreadable |
//! | Memory Usage | < 70 % | < 90 % | ≥ 90 % |
//! | Agents | ≥ 1 active | none | |
//! | Circles | (running/total) | | |
//!
//! `overall_status` is the worst of them.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::Utc;
use gathering_db::heartbeat;
use serde_json::{Value, json};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::Monitor;
use super::system::disk;
use crate::state::AppState;

pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Healthy,
    Warning,
    Critical,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Healthy => "healthy",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    fn of(value: f64, warn: f64, crit: f64) -> Level {
        if value >= crit {
            Level::Critical
        } else if value >= warn {
            Level::Warning
        } else {
            Level::Healthy
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub message: String,
    pub value: Value,
    pub latency_ms: f64,
}

impl Check {
    fn new(name: &'static str, level: Level, message: impl Into<String>, value: Value) -> Self {
        Check {
            name,
            level,
            message: message.into(),
            value,
            latency_ms: 0.0,
        }
    }

    fn to_json(&self, at: &str) -> Value {
        json!({
            "name": self.name,
            "status": self.level.as_str(),
            "message": self.message,
            "value": self.value,
            "latency_ms": self.latency_ms,
            "last_check": at,
        })
    }
}

/// Runs `f` within the timeout and stamps its latency; a timeout is critical.
async fn timed<F>(name: &'static str, f: F) -> Check
where
    F: Future<Output = Check>,
{
    let began = Instant::now();
    let mut check = match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(c) => c,
        Err(_) => Check::new(
            name,
            Level::Critical,
            format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            Value::Null,
        ),
    };
    check.latency_ms = (began.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    check
}

async fn database(state: &AppState) -> Check {
    let name = "Database";
    let r = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        client
            .query_one("SELECT 1", &[])
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match r {
        Ok(_) => Check::new(name, Level::Healthy, "PostgreSQL answers", json!("ok")),
        Err(e) => Check::new(
            name,
            Level::Critical,
            format!("unreachable: {e}"),
            Value::Null,
        ),
    }
}

async fn grpc(name: &'static str, channel: tonic::transport::Channel) -> Check {
    let mut client = HealthClient::new(channel);
    match client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => {
            Check::new(name, Level::Healthy, "serving", json!("serving"))
        }
        Ok(_) => Check::new(name, Level::Critical, "not serving", json!("not_serving")),
        Err(s) => Check::new(
            name,
            Level::Critical,
            format!("unreachable: {}", s.message()),
            Value::Null,
        ),
    }
}

/// Executors, Schedulers, Job Queue, Agents and Circles, from one connection.
async fn figures(state: &AppState) -> Vec<Check> {
    let r = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        let live = heartbeat::live_counts(&client)
            .await
            .map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM agent.agents WHERE is_active) AS agents, \
                        (SELECT count(*) FROM circle.circles WHERE is_active) AS circles, \
                        (SELECT count(*) FROM circle.circles WHERE is_active AND status = 'running') AS running, \
                        q.backlog, q.oldest, q.working \
                 FROM (SELECT count(*) FILTER (WHERE state IN ('available', 'failed') AND run_at <= now()) AS backlog, \
                              COALESCE(extract(epoch FROM now() - min(run_at) \
                                  FILTER (WHERE state IN ('available', 'failed') AND run_at <= now())), 0)::float8 AS oldest, \
                              count(*) FILTER (WHERE state = 'running') AS working \
                       FROM queue.jobs WHERE state IN ('available', 'failed', 'running')) q",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        let get = |c: &str| row.try_get::<_, i64>(c).map_err(|e| e.to_string());
        let oldest: f64 = row.try_get("oldest").map_err(|e| e.to_string())?;
        Ok::<_, String>((
            live,
            get("agents")?,
            get("circles")?,
            get("running")?,
            get("backlog")?,
            oldest,
            get("working")?,
        ))
    }
    .await;
    let (live, agents, circles, running, backlog, oldest, working) = match r {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("database unavailable: {e}");
            return ["Executors", "Schedulers", "Job Queue", "Agents", "Circles"]
                .into_iter()
                .map(|n| Check::new(n, Level::Critical, msg.clone(), Value::Null))
                .collect();
        }
    };
    let count = |service: &str| {
        live.iter()
            .find(|(s, _)| s == service)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let instances = |name: &'static str, service: &str| {
        let n = count(service);
        if n > 0 {
            Check::new(name, Level::Healthy, format!("{n} live"), json!(n))
        } else {
            Check::new(
                name,
                Level::Critical,
                format!(
                    "no {service} has beaten in the last {} s",
                    heartbeat::LIVE_WITHIN.as_secs()
                ),
                json!(0),
            )
        }
    };
    vec![
        instances("Executors", "executor"),
        instances("Schedulers", "scheduler"),
        Check::new(
            "Job Queue",
            Level::of(oldest, 60.0, 300.0),
            format!("{backlog} waiting (oldest {oldest:.0} s), {working} running"),
            json!({"backlog": backlog, "oldest_wait_seconds": (oldest * 10.0).round() / 10.0, "running": working}),
        ),
        if agents > 0 {
            Check::new(
                "Agents",
                Level::Healthy,
                format!("{agents} active"),
                json!(agents),
            )
        } else {
            Check::new("Agents", Level::Warning, "no active agent", json!(0))
        },
        Check::new(
            "Circles",
            Level::Healthy,
            format!("{running} of {circles} running"),
            json!(format!("{running}/{circles}")),
        ),
    ]
}

async fn providers(state: &AppState) -> Check {
    let name = "LLM Providers";
    match state.agents.llm.list_models().await {
        Ok(models) => {
            let mut usable: Vec<String> = models
                .into_iter()
                .filter(|m| m.available)
                .map(|m| m.provider)
                .collect();
            usable.sort();
            usable.dedup();
            if usable.is_empty() {
                Check::new(name, Level::Warning, "no provider is configured", json!([]))
            } else {
                Check::new(name, Level::Healthy, usable.join(", "), json!(usable))
            }
        }
        Err(e) => Check::new(
            name,
            Level::Warning,
            format!("unknown: the gateway cannot say ({e})"),
            Value::Null,
        ),
    }
}

async fn disk_space(monitor: &Monitor) -> Check {
    let name = "Disk Space";
    let path = monitor.data_dir.clone();
    match tokio::task::spawn_blocking(move || disk(&path)).await {
        Ok(Ok(d)) => Check::new(
            name,
            Level::of(d.percent, 80.0, 90.0),
            format!(
                "{}: {:.1} % used, {:.1} GB free",
                monitor.data_dir.display(),
                d.percent,
                d.free_gb
            ),
            json!(d.percent),
        ),
        Ok(Err(e)) => Check::new(name, Level::Critical, e, Value::Null),
        Err(e) => Check::new(name, Level::Critical, e.to_string(), Value::Null),
    }
}

async fn memory(monitor: &std::sync::Arc<Monitor>) -> Check {
    let name = "Memory Usage";
    let m = monitor.clone();
    match tokio::task::spawn_blocking(move || m.sampler.memory()).await {
        Ok(mem) => Check::new(
            name,
            Level::of(mem.percent, 70.0, 90.0),
            format!("{:.1} % of {:.1} GB in use", mem.percent, mem.total_gb),
            json!(mem.percent),
        ),
        Err(e) => Check::new(name, Level::Critical, e.to_string(), Value::Null),
    }
}

/// Every check, and the overall status.
pub async fn run(state: &AppState) -> Value {
    let monitor = &state.monitor;
    let (db, auth, gateway, figures, providers, disk, memory) = tokio::join!(
        timed("Database", database(state)),
        timed("Auth Service", grpc("Auth Service", monitor.auth.clone())),
        timed("LLM Gateway", grpc("LLM Gateway", monitor.gateway.clone())),
        async {
            let began = Instant::now();
            let r = tokio::time::timeout(CHECK_TIMEOUT, figures(state)).await;
            (r, began.elapsed())
        },
        timed("LLM Providers", providers(state)),
        timed("Disk Space", disk_space(monitor)),
        timed("Memory Usage", memory(monitor)),
    );
    let (figures, took) = figures;
    let figures_ms = (took.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let figures = figures.unwrap_or_else(|_| {
        ["Executors", "Schedulers", "Job Queue", "Agents", "Circles"]
            .into_iter()
            .map(|n| Check::new(n, Level::Critical, "no answer within 2 s", Value::Null))
            .collect()
    });
    let mut api = Check::new(
        "API Server",
        Level::Healthy,
        format!("edge up {} s", state.started.elapsed().as_secs()),
        json!(state.started.elapsed().as_secs()),
    );
    api.latency_ms = 0.0;
    let mut checks = vec![api, db, auth, gateway];
    checks.extend(figures.into_iter().map(|mut c| {
        c.latency_ms = figures_ms;
        c
    }));
    checks.extend([providers, disk, memory]);
    let overall = checks
        .iter()
        .map(|c| c.level)
        .max()
        .unwrap_or(Level::Healthy);
    let at = Utc::now().to_rfc3339();
    json!({
        "checks": checks.iter().map(|c| c.to_json(&at)).collect::<Vec<_>>(),
        "overall_status": overall.as_str(),
    })
}
