//! Budgets: what each key and team has spent in the current UTC day and month, checked before a
//! call starts.
//!
//! The source of truth is `agent.gateway_spend`, which the usage writer upserts in the same
//! statement as its batch of usage rows (see [`crate::usage`]): the sums are exactly the usage
//! rows, whichever gateway wrote them, with nothing lost or counted twice. Each gateway reads
//! the current periods' rows about every second (`LLM_SPEND_REFRESH_MS`) into a snapshot, and
//! adds what it recorded itself since that read began, so its own calls count at once.
//!
//! **Bounded overshoot.** A call is refused when the spend already reached the budget; a call
//! admitted just below it still runs to its end, and other gateways' calls reach this one's
//! view only after their usage flush (`LLM_USAGE_FLUSH_MS`) and this one's next refresh. So a
//! budget can be exceeded by the cost of the calls in flight when it was reached, plus what
//! other gateways spent during the last refresh period and flush interval (about 1.2 s by
//! default). A stream the client abandons before the provider reports its usage is charged
//! what it had streamed, estimated (see [`crate::usage::CallGuard`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_db::Pool;

use super::keys::{Budget, Period, VirtualKey};
use crate::error::GatewayError;

/// Whose spend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Key(i64),
    Team(String),
}

#[derive(Debug, Default)]
struct Spent {
    day: HashMap<Subject, f64>,
    month: HashMap<Subject, f64>,
}

pub struct SpendCache {
    current: RwLock<Arc<Spent>>,
    /// Cost recorded by this gateway since the last refresh began.
    local: Mutex<HashMap<Subject, f64>>,
}

impl Default for SpendCache {
    fn default() -> Self {
        Self::new()
    }
}

const CURRENT: &str = "SELECT scope, subject, period, cost_usd FROM agent.gateway_spend \
     WHERE (period = 'day' AND period_start = (now() AT TIME ZONE 'UTC')::date) \
        OR (period = 'month' AND period_start = date_trunc('month', now() AT TIME ZONE 'UTC')::date)";

impl SpendCache {
    pub fn new() -> SpendCache {
        SpendCache {
            current: RwLock::new(Arc::new(Spent::default())),
            local: Mutex::new(HashMap::new()),
        }
    }

    fn snapshot(&self) -> Arc<Spent> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, f64>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `subject` has spent in the current `period`, as far as this gateway knows.
    pub fn spent(&self, subject: &Subject, period: Period) -> f64 {
        let snapshot = self.snapshot();
        let stored = match period {
            Period::Daily => snapshot.day.get(subject),
            Period::Monthly => snapshot.month.get(subject),
        };
        stored.copied().unwrap_or(0.0) + self.local().get(subject).copied().unwrap_or(0.0)
    }

    /// Refuses a call when the key's or its team's budget is spent.
    pub fn check(&self, key: &VirtualKey, team_budget: Option<Budget>) -> Result<(), GatewayError> {
        if let Some(b) = key.budget {
            let spent = self.spent(&Subject::Key(key.id), b.period);
            if spent >= b.amount_usd {
                return Err(GatewayError::BudgetExceeded(format!(
                    "budget exceeded: key '{}' has spent ${spent:.4} of its {} budget of ${:.2}",
                    key.name,
                    b.period.as_str(),
                    b.amount_usd
                )));
            }
        }
        if let (Some(team), Some(b)) = (&key.team, team_budget) {
            let spent = self.spent(&Subject::Team(team.clone()), b.period);
            if spent >= b.amount_usd {
                return Err(GatewayError::BudgetExceeded(format!(
                    "budget exceeded: team '{team}' has spent ${spent:.4} of its {} budget of ${:.2}",
                    b.period.as_str(),
                    b.amount_usd
                )));
            }
        }
        Ok(())
    }

    /// Counts a finished call's cost for its key and team until the next refresh shows it.
    pub fn note(&self, key_id: Option<i64>, team: Option<&str>, cost: f64) {
        if cost.is_nan() || cost <= 0.0 {
            return;
        }
        let mut local = self.local();
        if let Some(id) = key_id {
            *local.entry(Subject::Key(id)).or_default() += cost;
        }
        if let Some(t) = team {
            *local.entry(Subject::Team(t.to_owned())).or_default() += cost;
        }
    }

    /// Reads the current periods' spend.
    pub async fn refresh(&self, pool: &Pool) -> Result<(), gathering_db::DbError> {
        // What is recorded from now on is counted locally until the next refresh; what was
        // recorded before is either in the rows read below or still queued for writing (a
        // brief undercount, part of the documented overshoot).
        let taken = std::mem::take(&mut *self.local());
        let read = async {
            let client = pool.get().await?;
            let statement = client.prepare_cached(CURRENT).await?;
            let rows = client.query(&statement, &[]).await?;
            let mut spent = Spent::default();
            for r in &rows {
                let scope: &str = r.try_get(0)?;
                let subject: String = r.try_get(1)?;
                let period: &str = r.try_get(2)?;
                let cost: f64 = r.try_get(3)?;
                let subject = match scope {
                    "key" => match subject.parse() {
                        Ok(id) => Subject::Key(id),
                        Err(_) => continue,
                    },
                    _ => Subject::Team(subject),
                };
                match period {
                    "day" => spent.day.insert(subject, cost),
                    _ => spent.month.insert(subject, cost),
                };
            }
            Ok::<_, gathering_db::DbError>(spent)
        };
        match read.await {
            Ok(spent) => {
                let spent = Arc::new(spent);
                match self.current.write() {
                    Ok(mut s) => *s = spent,
                    Err(poisoned) => *poisoned.into_inner() = spent,
                }
                Ok(())
            }
            Err(e) => {
                // Keep counting what this gateway spent.
                let mut local = self.local();
                for (subject, cost) in taken {
                    *local.entry(subject).or_default() += cost;
                }
                Err(e)
            }
        }
    }
}

/// Refreshes the spend snapshot every `every` until `shutdown`.
pub async fn run_refresher(
    cache: Arc<SpendCache>,
    pool: Pool,
    every: Duration,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = cache.refresh(&pool).await {
            tracing::warn!(error = %e, "spend refresh failed; keeping the previous figures");
        }
    }
}
