//! Per-key rate limits (requests and tokens per minute), shared by every gateway through
//! `agent.gateway_rate`, with little added latency.
//!
//! Windows are fixed UTC minutes (as the edge's limits: a client can fit up to twice the limit
//! around a boundary). Each gateway keeps, per key, the window's totals as last read, and:
//!
//! - **Requests** are admitted against a *lease*: a gateway claims a few requests of the key's
//!   window from the database at once (one conditional upsert that never takes the window past
//!   the limit) and admits that many locally without a round trip. A lease starts at one
//!   request and doubles while claims come faster than one per flush interval, up to an eighth
//!   of the limit; a lease left idle for a flush interval is given back. So the limit holds
//!   exactly across any number of gateways (never more than `rpm` requests admitted per window;
//!   at worst a few fewer while leases sit unused), a small limit costs one round trip per
//!   request, and a busy key one per lease.
//! - **Tokens** are known only when a call ends: each gateway adds them to its local counter,
//!   and a flusher (every `LLM_RATE_FLUSH_MS`, 100 ms by default) sends every key's tokens and
//!   returned leases in one upsert that answers the window's totals. A call is refused once the
//!   window's tokens reached the limit, so it can be exceeded by the calls in flight and what
//!   other gateways counted since their last flush.
//!
//! If the database cannot be reached the call is let through (it would be served anyway) and
//! counted in `llm_gateway_key_limits_unavailable_total`. The answers carry OpenAI's headers
//! (`x-ratelimit-limit-requests`, `-remaining-`, `-reset-`, and the `-tokens` ones).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gathering_core::Shutdown;
use gathering_db::Pool;
use tokio::time::Instant;

use super::keys::VirtualKey;
use crate::error::GatewayError;

/// One limit as the headers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window resets.
    pub reset: Duration,
}

/// The key's limits after this call was counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateInfo {
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
}

#[derive(Default)]
struct Window {
    /// Unix minute.
    minute: i64,
    /// Requests this gateway may still admit in this window.
    lease: i64,
    /// Size of the next claim.
    want: i64,
    last_claim: Option<Instant>,
    /// The window's totals over every gateway, as last read (leases included).
    known_requests: i64,
    known_tokens: i64,
    /// Tokens counted here and not yet sent, and being sent.
    pending_tokens: i64,
    flushing_tokens: i64,
    admitted_since_flush: i64,
    /// The window's totals were read from the database at least once (a gateway that never
    /// saw the key must not admit on an empty view).
    synced: bool,
    /// Asked since the last flush (admitted or not): its totals are worth refreshing.
    touched: bool,
}

impl Window {
    fn roll(&mut self, minute: i64) {
        if self.minute != minute {
            let want = self.want;
            *self = Window {
                minute,
                want,
                ..Window::default()
            };
        }
    }

    fn tokens_used(&self) -> i64 {
        self.known_tokens + self.flushing_tokens + self.pending_tokens
    }

    fn info(&self, key: &VirtualKey, reset: Duration) -> RateInfo {
        let left = |limit: u32, used: i64| Quota {
            limit: u64::from(limit),
            remaining: u64::try_from(i64::from(limit) - used.max(0)).unwrap_or(0),
            reset,
        };
        RateInfo {
            requests: key
                .rpm
                .map(|rpm| left(rpm, self.known_requests - self.lease)),
            tokens: key.tpm.map(|tpm| left(tpm, self.tokens_used())),
        }
    }

    /// Admits or refuses without the database, or says a claim is needed (`None`).
    fn try_admit(
        &mut self,
        key: &VirtualKey,
        reset: Duration,
    ) -> Option<Result<RateInfo, GatewayError>> {
        self.touched = true;
        if !self.synced {
            return None;
        }
        if let Some(tpm) = key.tpm
            && self.tokens_used() >= i64::from(tpm)
        {
            return Some(Err(limited(
                key,
                "tokens",
                tpm,
                reset,
                self.info(key, reset),
            )));
        }
        let Some(rpm) = key.rpm else {
            self.admitted_since_flush += 1;
            return Some(Ok(self.info(key, reset)));
        };
        if self.lease > 0 {
            self.lease -= 1;
            self.admitted_since_flush += 1;
            return Some(Ok(self.info(key, reset)));
        }
        if self.known_requests >= i64::from(rpm) {
            return Some(Err(limited(
                key,
                "requests",
                rpm,
                reset,
                self.info(key, reset),
            )));
        }
        None
    }

    fn next_want(&mut self, rpm: u32, flush: Duration) -> i64 {
        let cap = (i64::from(rpm) / 8).max(1);
        let now = Instant::now();
        self.want = match self.last_claim {
            Some(at) if now.duration_since(at) < flush => (self.want * 2).clamp(1, cap),
            _ => 1,
        };
        self.last_claim = Some(now);
        self.want
    }
}

fn limited(
    key: &VirtualKey,
    what: &str,
    limit: u32,
    reset: Duration,
    info: RateInfo,
) -> GatewayError {
    GatewayError::KeyRateLimited {
        message: format!(
            "rate limit reached for key '{}': {limit} {what} per minute; try again in {:.1}s",
            key.name,
            reset.as_secs_f64()
        ),
        retry_after: reset,
        info,
    }
}

struct KeyState {
    /// One claim per key at a time on this gateway.
    claim: tokio::sync::Mutex<()>,
    window: Mutex<Window>,
}

impl KeyState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct RateLimiter {
    pool: Pool,
    keys: Mutex<HashMap<i64, Arc<KeyState>>>,
    flush: Duration,
}

/// The current unix minute and the time left in it.
fn now_minute() -> (i64, Duration) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let minute = since.as_secs() / 60;
    let reset = Duration::from_secs((minute + 1) * 60).saturating_sub(since);
    (i64::try_from(minute).unwrap_or(0), reset)
}

/// Takes up to `$3` requests of the window without passing the limit `$4`; `granted` (scratch)
/// says how many it got: in `SET`, `r.*` are the values before this update.
const CLAIM: &str = "INSERT INTO agent.gateway_rate AS r (key_id, window_start, requests, tokens, granted) \
     VALUES ($1, $2, LEAST($3::int8, $4::int8), 0, LEAST($3::int8, $4::int8)) \
     ON CONFLICT (key_id, window_start) DO UPDATE \
     SET granted = GREATEST(LEAST(EXCLUDED.granted, $4::int8 - r.requests), 0), \
         requests = r.requests + GREATEST(LEAST(EXCLUDED.granted, $4::int8 - r.requests), 0) \
     RETURNING granted, requests, tokens";

/// Adds every key's tokens and returned leases (`granted` carries the signed request delta)
/// and answers the windows' totals. Ordered by key so concurrent flushes cannot deadlock.
const FLUSH: &str = "INSERT INTO agent.gateway_rate AS r (key_id, window_start, requests, tokens, granted) \
     SELECT k, w, GREATEST(dr, 0), dt, dr \
     FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[]) AS u(k, w, dr, dt) ORDER BY k \
     ON CONFLICT (key_id, window_start) DO UPDATE \
     SET requests = GREATEST(r.requests + EXCLUDED.granted, 0), tokens = r.tokens + EXCLUDED.tokens \
     RETURNING key_id, requests, tokens";

impl RateLimiter {
    pub fn new(pool: Pool, flush: Duration) -> RateLimiter {
        RateLimiter {
            pool,
            keys: Mutex::new(HashMap::new()),
            flush,
        }
    }

    fn state(&self, id: i64) -> Arc<KeyState> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.entry(id)
            .or_insert_with(|| {
                Arc::new(KeyState {
                    claim: tokio::sync::Mutex::new(()),
                    window: Mutex::new(Window::default()),
                })
            })
            .clone()
    }

    /// Counts a call of `key` against its limits, or refuses it (429 with the headers).
    pub async fn admit(&self, key: &VirtualKey) -> Result<Option<RateInfo>, GatewayError> {
        if !key.limited() {
            return Ok(None);
        }
        let state = self.state(key.id);
        let (minute, reset) = now_minute();
        {
            let mut w = state.lock();
            w.roll(minute);
            if let Some(outcome) = w.try_admit(key, reset) {
                return outcome.map(Some);
            }
        }
        let _one_claim = state.claim.lock().await;
        let want = {
            let mut w = state.lock();
            w.roll(minute);
            // Another call may have claimed while this one waited.
            if let Some(outcome) = w.try_admit(key, reset) {
                return outcome.map(Some);
            }
            // Without a request limit the claim only reads the window's totals.
            key.rpm.map_or(0, |rpm| w.next_want(rpm, self.flush))
        };
        let limit = key.rpm.map_or(i64::MAX, i64::from);
        let claimed = async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(CLAIM).await?;
            let row = client
                .query_one(&statement, &[&key.id, &minute, &want, &limit])
                .await?;
            Ok::<_, gathering_db::DbError>((
                row.try_get::<_, i64>(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
            ))
        };
        let (granted, requests, tokens): (i64, i64, i64) = match claimed.await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, key = key.id, "key rate limit unavailable; letting the call through");
                metrics::counter!("llm_gateway_key_limits_unavailable_total").increment(1);
                return Ok(None);
            }
        };
        let mut w = state.lock();
        w.roll(minute);
        w.synced = true;
        w.known_requests = requests;
        w.known_tokens = w.known_tokens.max(tokens);
        w.lease += granted;
        match w.try_admit(key, reset) {
            Some(outcome) => outcome.map(Some),
            // Only when the lease is empty and the window not full, which a claim that got
            // nothing rules out; refuse rather than loop.
            None => Err(limited(
                key,
                "requests",
                key.rpm.unwrap_or(0),
                reset,
                w.info(key, reset),
            )),
        }
    }

    /// Counts the tokens of a finished call of key `id` (if it has limits).
    pub fn note_tokens(&self, id: i64, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let state = {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            match keys.get(&id) {
                Some(s) => s.clone(),
                None => return,
            }
        };
        let (minute, _) = now_minute();
        let mut w = state.lock();
        w.roll(minute);
        w.pending_tokens = w
            .pending_tokens
            .saturating_add(i64::try_from(tokens).unwrap_or(i64::MAX));
        w.touched = true;
    }

    /// Sends tokens and idle leases, and reads the totals of every key used lately.
    pub async fn flush(&self) -> Result<(), gathering_db::DbError> {
        let (minute, _) = now_minute();
        let states: Vec<(i64, Arc<KeyState>)> = {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            // Keys not used for a few minutes are forgotten.
            keys.retain(|_, s| s.lock().minute >= minute - 2);
            keys.iter().map(|(id, s)| (*id, s.clone())).collect()
        };
        let (mut ids, mut windows, mut d_requests, mut d_tokens) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut sent = Vec::new();
        for (id, state) in states {
            let mut w = state.lock();
            if w.minute != minute {
                continue;
            }
            let give_back = if w.lease > 0 && w.admitted_since_flush == 0 {
                std::mem::take(&mut w.lease)
            } else {
                0
            };
            let tokens = std::mem::take(&mut w.pending_tokens);
            if give_back == 0 && tokens == 0 && !w.touched {
                continue;
            }
            w.flushing_tokens += tokens;
            w.touched = false;
            w.admitted_since_flush = 0;
            ids.push(id);
            windows.push(minute);
            d_requests.push(-give_back);
            d_tokens.push(tokens);
            sent.push((state.clone(), tokens));
        }
        if ids.is_empty() {
            return Ok(());
        }
        let result = async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(FLUSH).await?;
            let rows = client
                .query(&statement, &[&ids, &windows, &d_requests, &d_tokens])
                .await?;
            let mut totals = HashMap::with_capacity(rows.len());
            for r in &rows {
                totals.insert(
                    r.try_get::<_, i64>(0)?,
                    (r.try_get::<_, i64>(1)?, r.try_get::<_, i64>(2)?),
                );
            }
            Ok::<_, gathering_db::DbError>(totals)
        }
        .await;
        for ((state, tokens), id) in sent.iter().zip(&ids) {
            let mut w = state.lock();
            if w.minute != minute {
                continue;
            }
            w.flushing_tokens -= tokens;
            match &result {
                Ok(totals) => {
                    if let Some((requests, tokens)) = totals.get(id) {
                        w.known_requests = *requests;
                        w.known_tokens = *tokens;
                    }
                }
                Err(_) => w.pending_tokens += tokens,
            }
        }
        result.map(|_| ())
    }

    /// Deletes windows older than two minutes.
    pub async fn prune(&self) -> Result<(), gathering_db::DbError> {
        let (minute, _) = now_minute();
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM agent.gateway_rate WHERE window_start < $1",
                &[&(minute - 2)],
            )
            .await?;
        Ok(())
    }
}

/// Flushes every `LLM_RATE_FLUSH_MS`, prunes old windows every minute, until `shutdown`.
pub async fn run_flusher(limiter: Arc<RateLimiter>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(limiter.flush.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = limiter.flush().await {
            tracing::warn!(error = %e, "key rate-limit flush failed");
        }
        if last_prune.elapsed() >= Duration::from_secs(60) {
            last_prune = Instant::now();
            if let Err(e) = limiter.prune().await {
                tracing::warn!(error = %e, "pruning rate-limit windows failed");
            }
        }
    }
}
