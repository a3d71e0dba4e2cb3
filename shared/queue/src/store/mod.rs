//! The queue's SQL: every operation is one statement (batches included).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gathering_db::tokio_postgres::{Error as PgError, Row};
use gathering_db::{GenericClient, Pool};
use serde_json::Value;

use crate::QueueError;
use crate::job::{Enqueued, Job, JobId, JobRecord, JobState, NewJob, channel};
use crate::notify::NotifyLimiter;

mod sql;
use sql::*;

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Makes the live job with `unique_key` due now (a snoozed durable timer whose awaited event
/// happened), inside the caller's transaction. A job running meanwhile is not interrupted: its
/// next snooze ends at once instead. False when there is no such live job.
pub async fn wake_in<C: GenericClient>(c: &C, unique_key: &str) -> Result<bool, QueueError> {
    let stmt = c.prepare_cached(WAKE_SQL).await?;
    let row = c.query_one(&stmt, &[&unique_key]).await?;
    Ok(row.try_get::<_, i64>(0)? > 0)
}

/// Enqueues one job inside the caller's transaction (or on any client). Workers are notified
/// when the transaction commits; PostgreSQL folds repeated notifications of one transaction.
pub async fn enqueue_in<C: GenericClient>(
    client: &C,
    job: &NewJob,
) -> Result<Enqueued, QueueError> {
    let mut out = enqueue_many_in(client, std::slice::from_ref(job)).await?;
    out.pop()
        .ok_or_else(|| QueueError::Invalid("enqueue returned no row".into()))
}

/// Enqueues many jobs in one round trip, inside the caller's transaction.
pub async fn enqueue_many_in<C: GenericClient>(
    client: &C,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, QueueError> {
    insert(client, jobs, true).await
}

async fn insert<C: GenericClient>(
    client: &C,
    jobs: &[NewJob],
    notify: bool,
) -> Result<Vec<Enqueued>, QueueError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    for job in jobs {
        job.validate()?;
    }
    let queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let payloads: Vec<&Value> = jobs.iter().map(|j| &j.payload).collect();
    let priorities: Vec<i16> = jobs.iter().map(|j| j.priority).collect();
    let run_ats: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|j| j.run_at).collect();
    let delays: Vec<i64> = jobs.iter().map(NewJob::delay_ms).collect();
    let max_attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    let keys: Vec<Option<&str>> = jobs.iter().map(|j| j.unique_key.as_deref()).collect();
    let stmt = client.prepare_cached(INSERT_SQL).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &queues,
                &kinds,
                &payloads,
                &priorities,
                &run_ats,
                &delays,
                &max_attempts,
                &keys,
                &notify,
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut missing = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let inserted: Option<i64> = row.try_get("inserted_id")?;
        let existing: Option<i64> = row.try_get("existing_id")?;
        match (inserted, existing) {
            (Some(id), _) => out.push(Enqueued { id, inserted: true }),
            (None, Some(id)) => out.push(Enqueued {
                id,
                inserted: false,
            }),
            (None, None) => {
                // The live duplicate was inserted by this very batch or by a transaction that
                // committed after this statement's snapshot: look it up now.
                missing.push(i);
                out.push(Enqueued {
                    id: 0,
                    inserted: false,
                });
            }
        }
    }
    if !missing.is_empty() {
        let keys: Vec<&str> = missing
            .iter()
            .filter_map(|&i| jobs[i].unique_key.as_deref())
            .collect();
        let found = client
            .query(
                "SELECT unique_key, id FROM queue.jobs WHERE unique_key = ANY($1) \
                 AND state IN ('available', 'running', 'failed')",
                &[&keys],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<(Option<String>, i64)>, PgError>>()?;
        for i in missing {
            let key = jobs[i].unique_key.as_deref();
            let id = found
                .iter()
                .find(|(k, _)| k.as_deref() == key)
                .map(|&(_, id)| id)
                .ok_or_else(|| QueueError::Invalid("unique job vanished during enqueue".into()))?;
            out[i] = Enqueued {
                id,
                inserted: false,
            };
        }
    }
    Ok(out)
}

fn job_from_row(row: &Row) -> Result<Job, PgError> {
    Ok(Job {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        priority: row.try_get("priority")?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        created_at: row.try_get("created_at")?,
        run_at: row.try_get("run_at")?,
    })
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Will run again at its back-off time.
    Retrying,
    /// Out of attempts (or failed for good): kept as `discarded`.
    Discarded,
    /// The lease was no longer ours: nothing recorded.
    Refused,
}

/// The queue, through a pool. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pool: Pool,
    limiter: Arc<NotifyLimiter>,
}

impl Queue {
    pub fn new(pool: Pool) -> Self {
        let limiter = Arc::new(NotifyLimiter::new(pool.clone(), Duration::from_millis(5)));
        Self { pool, limiter }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Enqueues one job in its own transaction.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let mut out = self.enqueue_many(std::slice::from_ref(&job)).await?;
        out.pop()
            .ok_or_else(|| QueueError::Invalid("enqueue returned no row".into()))
    }

    /// Enqueues many jobs in one statement. Notifications are rate-limited per queue: at most
    /// one per 5 ms window, with a trailing one after the window so none is lost.
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        let notify_now = self.limiter.take(&queues);
        let client = self.pool.get().await?;
        let out = insert(&client, jobs, notify_now).await?;
        if !notify_now {
            // Committed (autocommit): a trailing notification now cannot arrive too early.
            self.limiter.schedule_trailing(&queues);
        }
        Ok(out)
    }

    /// Claims up to `limit` due jobs of `queue` for `owner`, leased for `lease`.
    pub async fn claim(
        &self,
        queue: &str,
        owner: &str,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Job>, QueueError> {
        let client = self.pool.get().await?;
        let rows = if limit == 1 {
            let stmt = client.prepare_cached(CLAIM_ONE_SQL).await?;
            client.query(&stmt, &[&queue, &owner, &ms(lease)]).await?
        } else {
            let stmt = client.prepare_cached(CLAIM_SQL).await?;
            client
                .query(&stmt, &[&queue, &owner, &ms(lease), &limit])
                .await?
        };
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<Job>, _>>()?;
        jobs.sort_by_key(|j| (j.priority, j.run_at, j.id));
        Ok(jobs)
    }

    /// Records completions; returns the ids accepted. A completion whose lease was lost is
    /// refused (absent from the result).
    pub async fn complete_many(
        &self,
        owner: &str,
        done: &[(JobId, i32)],
    ) -> Result<Vec<JobId>, QueueError> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<JobId> = done.iter().map(|d| d.0).collect();
        let attempts: Vec<i32> = done.iter().map(|d| d.1).collect();
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(COMPLETE_SQL).await?;
        let rows = client.query(&stmt, &[&ids, &attempts, &owner]).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// Records one completion (fenced like [`Queue::complete`]) and claims the next due job
    /// of `queue` in the same statement: one round trip and one commit per job in single-row
    /// mode. Returns whether the completion was accepted, and the job claimed (if any).
    pub async fn complete_and_claim(
        &self,
        owner: &str,
        id: JobId,
        attempt: i32,
        queue: &str,
        lease: Duration,
    ) -> Result<(bool, Vec<Job>), QueueError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(COMPLETE_AND_CLAIM_SQL).await?;
        let rows = client
            .query(&stmt, &[&id, &attempt, &owner, &queue, &ms(lease)])
            .await?;
        let mut done = false;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            done |= row.try_get::<_, i64>("done")? > 0;
            if row.try_get::<_, Option<JobId>>("id")?.is_some() {
                jobs.push(job_from_row(row)?);
            }
        }
        jobs.sort_by_key(|j| (j.priority, j.run_at, j.id));
        Ok((done, jobs))
    }

    /// Records one completion; false when refused (lease lost).
    pub async fn complete(&self, owner: &str, id: JobId, attempt: i32) -> Result<bool, QueueError> {
        Ok(!self
            .complete_many(owner, &[(id, attempt)])
            .await?
            .is_empty())
    }

    /// Records a failed attempt. `retry_in` is the back-off before the next attempt; `None`
    /// discards the job now whatever attempts remain.
    pub async fn fail(
        &self,
        owner: &str,
        id: JobId,
        attempt: i32,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<FailOutcome, QueueError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(FAIL_SQL).await?;
        let discard = retry_in.is_none();
        let delay = ms(retry_in.unwrap_or_default());
        let error = truncate(error, 8000);
        let row = client
            .query_opt(&stmt, &[&id, &owner, &attempt, &error, &discard, &delay])
            .await?;
        let state = row.map(|r| r.try_get::<_, String>(0)).transpose()?;
        Ok(match state {
            None => FailOutcome::Refused,
            Some(s) if s == "discarded" => FailOutcome::Discarded,
            Some(_) => FailOutcome::Retrying,
        })
    }

    /// Puts a running job back to wait `delay` without counting the attempt, optionally with a
    /// new payload (a durable timer's progress). False when the lease was lost.
    pub async fn snooze(
        &self,
        owner: &str,
        id: JobId,
        attempt: i32,
        delay: Duration,
        payload: Option<&Value>,
    ) -> Result<bool, QueueError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(SNOOZE_SQL).await?;
        let n = client
            .execute(&stmt, &[&id, &owner, &attempt, &ms(delay), &payload])
            .await?;
        Ok(n == 1)
    }

    /// Gives back leased jobs without counting their attempt (graceful shutdown), and wakes
    /// workers of their queues.
    pub async fn release(&self, owner: &str, ids: &[JobId]) -> Result<u64, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let client = self.pool.get().await?;
        let rows = client.query(RELEASE_SQL, &[&owner, &ids]).await?;
        let mut queues = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        queues.sort_unstable();
        queues.dedup();
        notify_queues(&client, &queues).await?;
        Ok(rows.len() as u64)
    }

    /// Extends the leases of `ids` held by `owner`; returns those still held.
    pub async fn heartbeat(
        &self,
        owner: &str,
        lease: Duration,
        ids: &[JobId],
    ) -> Result<Vec<JobId>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(HEARTBEAT_SQL).await?;
        let rows = client.query(&stmt, &[&owner, &ms(lease), &ids]).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// Makes jobs whose lease expired available again (or discards them when out of attempts)
    /// and wakes their queues. Safe to run from every instance at once.
    pub async fn rescue_expired(&self, limit: i64) -> Result<Vec<JobId>, QueueError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(RESCUE_SQL).await?;
        let rows = client.query(&stmt, &[&limit]).await?;
        let mut queues = Vec::new();
        let mut ids: Vec<JobId> = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(r.try_get(0)?);
            if r.try_get::<_, &str>(2)? == "available" {
                queues.push(r.try_get::<_, String>(1)?);
            }
        }
        queues.sort_unstable();
        queues.dedup();
        notify_queues(&client, &queues).await?;
        if !ids.is_empty() {
            tracing::warn!(count = ids.len(), ?ids, "rescued jobs whose lease expired");
        }
        Ok(ids)
    }

    /// Cancels a job that is not final yet. Returns its previous state (`None` when no such
    /// job). A running job's worker is told through `NOTIFY queue_cancel` and stops it.
    pub async fn cancel(&self, id: JobId) -> Result<Option<JobState>, QueueError> {
        let client = self.pool.get().await?;
        let row = client.query_opt(CANCEL_SQL, &[&id]).await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(JobState::parse(r.try_get::<_, &str>("previous")?))
    }

    /// Deletes final jobs older than their retention; returns how many.
    pub async fn purge_finished(
        &self,
        completed_after: Duration,
        failed_after: Duration,
        limit: i64,
    ) -> Result<u64, QueueError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                PURGE_SQL,
                &[&ms(completed_after), &ms(failed_after), &limit],
            )
            .await?)
    }

    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, QueueError> {
        let client = self.pool.get().await?;
        let row = client.query_opt(GET_SQL, &[&id]).await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(JobRecord {
            id: r.try_get("id")?,
            queue: r.try_get("queue")?,
            kind: r.try_get("kind")?,
            payload: r.try_get("payload")?,
            state: JobState::parse(r.try_get("state")?).unwrap_or(JobState::Available),
            attempt: r.try_get("attempt")?,
            max_attempts: r.try_get("max_attempts")?,
            lease_owner: r.try_get("lease_owner")?,
            last_error: r.try_get("last_error")?,
            errors: r.try_get("errors")?,
            run_at: r.try_get("run_at")?,
            finished_at: r.try_get("finished_at")?,
        }))
    }
}

/// One `NOTIFY` per queue, in one statement.
pub(crate) async fn notify_queues<C: GenericClient>(
    client: &C,
    queues: &[String],
) -> Result<(), QueueError> {
    if queues.is_empty() {
        return Ok(());
    }
    let channels: Vec<String> = queues.iter().map(|q| channel(q)).collect();
    client
        .query(
            "SELECT pg_notify(c, '') FROM unnest($1::text[]) AS c",
            &[&channels],
        )
        .await?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
