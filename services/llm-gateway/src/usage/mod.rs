//! Usage accounting: one row per call in `agent.llm_usage` (provider, model, tokens, cost from
//! the catalogue's prices, total and upstream latency, status, request id, caller, virtual key
//! and team, cached or not); [`guard::CallGuard`] makes sure each call records exactly one.
//!
//! The request path only does a `try_send` into a bounded queue; a writer task inserts rows in
//! batches (one `INSERT … SELECT FROM UNNEST(arrays)` per batch), so accounting adds no
//! database round trip to any call. When the queue is full (the database is down or far
//! behind) records are dropped and counted (`llm_gateway_usage_dropped_total`) rather than
//! growing memory or slowing calls. On shutdown the writer drains the queue before the pool
//! closes.
//!
//! **Spend.** The same statement that inserts a batch upserts, for every key and team in it,
//! the spend of the UTC day and month in `agent.gateway_spend` (one statement, so both commit
//! or neither: the budgets' sums are exactly the usage rows, whichever gateway wrote them). A
//! record also counts at once in this gateway's view of the key's spend and tokens per minute
//! ([`crate::access::Access::record`]), before it is written.

use std::time::{Duration, SystemTime};

use gathering_core::Shutdown;
use gathering_db::Pool;
use tokio::sync::mpsc;

use crate::access::Access;
use crate::model::Caller;

pub mod guard;

#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub at: SystemTime,
    pub request_id: String,
    /// `chat` or `embedding`.
    pub kind: &'static str,
    pub provider: String,
    pub model: String,
    pub caller: Caller,
    /// `ok`, `error` or `cancelled`.
    pub status: &'static str,
    pub error_kind: Option<&'static str>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: Option<f64>,
    pub latency: Duration,
    pub upstream_latency: Option<Duration>,
    pub attempts: u32,
    pub models_tried: u32,
    pub stream: bool,
    pub mock: bool,
    /// The virtual key and its team, when a key made the call.
    pub key_id: Option<i64>,
    pub team: Option<String>,
    /// Answered from the response cache (no provider call, no cost).
    pub cached: bool,
}

#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRecord>,
    access: Option<Access>,
}

impl UsageSink {
    /// Queues a record; never waits.
    pub fn record(&self, record: UsageRecord) {
        if let Some(access) = &self.access
            && record.key_id.is_some()
        {
            let tokens = u64::from(record.input_tokens) + u64::from(record.output_tokens);
            access.record(
                record.key_id,
                record.team.as_deref(),
                record.cost_usd,
                tokens,
            );
        }
        if self.tx.try_send(record).is_err() {
            metrics::counter!("llm_gateway_usage_dropped_total").increment(1);
        }
    }
}

/// Starts the writer; it stops after `shutdown`, once the queue is drained. With `access`,
/// records of virtual keys count at once against their budgets and limits.
pub fn start(
    pool: Pool,
    capacity: usize,
    batch: usize,
    flush: Duration,
    access: Option<Access>,
    shutdown: Shutdown,
) -> (UsageSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let task = tokio::spawn(writer(pool, rx, batch.max(1), flush, shutdown));
    (UsageSink { tx, access }, task)
}

async fn writer(
    pool: Pool,
    mut rx: mpsc::Receiver<UsageRecord>,
    batch: usize,
    flush: Duration,
    shutdown: Shutdown,
) {
    let mut buf: Vec<UsageRecord> = Vec::with_capacity(batch);
    loop {
        let got = tokio::select! {
            n = rx.recv_many(&mut buf, batch) => n,
            _ = shutdown.wait() => 0,
        };
        if got == 0 {
            // Closed or shutting down: write whatever is queued, then stop.
            while let Ok(r) = rx.try_recv() {
                buf.push(r);
                if buf.len() >= batch {
                    write(&pool, &buf).await;
                    buf.clear();
                }
            }
            if !buf.is_empty() {
                write(&pool, &buf).await;
            }
            return;
        }
        if buf.len() < batch && !shutdown.is_triggered() {
            // Let a batch fill up a little: fewer, larger inserts.
            tokio::select! {
                _ = tokio::time::sleep(flush) => {}
                _ = shutdown.wait() => {}
            }
            while buf.len() < batch {
                match rx.try_recv() {
                    Ok(r) => buf.push(r),
                    Err(_) => break,
                }
            }
        }
        write(&pool, &buf).await;
        buf.clear();
    }
}

/// The batch's rows, and the spend they add per key and team per UTC day and month, in one
/// statement. Spend rows are upserted in key order, so concurrent writers cannot deadlock.
const INSERT: &str = "WITH ins AS ( \
        INSERT INTO agent.llm_usage (created_at, request_id, kind, provider, model, \
            caller_service, agent_id, user_id, status, error_kind, input_tokens, output_tokens, \
            cost_usd, latency_ms, upstream_latency_ms, attempts, models_tried, stream, mock, \
            key_id, team, cached) \
        SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], \
            $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::int4[], $12::int4[], \
            $13::float8[], $14::float8[], $15::float8[], $16::int4[], $17::int4[], $18::bool[], \
            $19::bool[], $20::int8[], $21::text[], $22::bool[]) \
        RETURNING created_at, key_id, team, cost_usd), \
    spend AS ( \
        SELECT s.scope, s.subject, p.period, p.start AS period_start, \
            sum(COALESCE(ins.cost_usd, 0)) AS cost, count(*) AS requests \
        FROM ins \
        CROSS JOIN LATERAL (VALUES ('key', ins.key_id::text), ('team', ins.team)) AS s(scope, subject) \
        CROSS JOIN LATERAL (VALUES \
            ('day', (ins.created_at AT TIME ZONE 'UTC')::date), \
            ('month', date_trunc('month', ins.created_at AT TIME ZONE 'UTC')::date)) AS p(period, start) \
        WHERE s.subject IS NOT NULL \
        GROUP BY 1, 2, 3, 4) \
    INSERT INTO agent.gateway_spend AS g (scope, subject, period, period_start, cost_usd, requests) \
    SELECT scope, subject, period, period_start, cost, requests FROM spend ORDER BY 1, 2, 3, 4 \
    ON CONFLICT (scope, subject, period, period_start) DO UPDATE \
    SET cost_usd = g.cost_usd + EXCLUDED.cost_usd, requests = g.requests + EXCLUDED.requests, \
        updated_at = now()";

/// Inserts a batch; retries once after a pause, then gives the batch up (and says so).
async fn write(pool: &Pool, rows: &[UsageRecord]) {
    for attempt in 0..2 {
        match insert(pool, rows).await {
            Ok(()) => {
                metrics::counter!("llm_gateway_usage_written_total").increment(rows.len() as u64);
                return;
            }
            Err(e) if attempt == 0 => {
                tracing::warn!(error = %e, rows = rows.len(), "usage insert failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, rows = rows.len(), "usage insert failed; batch dropped");
                metrics::counter!("llm_gateway_usage_dropped_total").increment(rows.len() as u64);
            }
        }
    }
}

fn clamp(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn insert(pool: &Pool, rows: &[UsageRecord]) -> Result<(), gathering_db::DbError> {
    let at: Vec<SystemTime> = rows.iter().map(|r| r.at).collect();
    let request_id: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    let kind: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let provider: Vec<&str> = rows.iter().map(|r| r.provider.as_str()).collect();
    let model: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    let service: Vec<Option<&str>> = rows.iter().map(|r| r.caller.service.as_deref()).collect();
    let agent: Vec<Option<i64>> = rows.iter().map(|r| r.caller.agent_id).collect();
    let user: Vec<Option<&str>> = rows.iter().map(|r| r.caller.user_id.as_deref()).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
    let error_kind: Vec<Option<&str>> = rows.iter().map(|r| r.error_kind).collect();
    let input: Vec<i32> = rows.iter().map(|r| clamp(r.input_tokens)).collect();
    let output: Vec<i32> = rows.iter().map(|r| clamp(r.output_tokens)).collect();
    let cost: Vec<Option<f64>> = rows.iter().map(|r| r.cost_usd).collect();
    let latency: Vec<f64> = rows.iter().map(|r| ms(r.latency)).collect();
    let upstream: Vec<Option<f64>> = rows.iter().map(|r| r.upstream_latency.map(ms)).collect();
    let attempts: Vec<i32> = rows.iter().map(|r| clamp(r.attempts)).collect();
    let tried: Vec<i32> = rows.iter().map(|r| clamp(r.models_tried)).collect();
    let stream: Vec<bool> = rows.iter().map(|r| r.stream).collect();
    let mock: Vec<bool> = rows.iter().map(|r| r.mock).collect();
    let key_id: Vec<Option<i64>> = rows.iter().map(|r| r.key_id).collect();
    let team: Vec<Option<&str>> = rows.iter().map(|r| r.team.as_deref()).collect();
    let cached: Vec<bool> = rows.iter().map(|r| r.cached).collect();
    let client = pool.get().await?;
    let statement = client.prepare_cached(INSERT).await?;
    client
        .execute(
            &statement,
            &[
                &at,
                &request_id,
                &kind,
                &provider,
                &model,
                &service,
                &agent,
                &user,
                &status,
                &error_kind,
                &input,
                &output,
                &cost,
                &latency,
                &upstream,
                &attempts,
                &tried,
                &stream,
                &mock,
                &key_id,
                &team,
                &cached,
            ],
        )
        .await?;
    Ok(())
}
