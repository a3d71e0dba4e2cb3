//! Starting scheduler instances and making schedules.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gathering_core::Shutdown;
use gathering_testkit::TestDb;

pub struct Instance {
    pub shutdown: Shutdown,
    pub started: gathering_scheduler::Started,
}

impl Instance {
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.started.wait().await.unwrap();
    }
}

pub async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Instance {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        ("SCHEDULER_ADMIN_ADDR".into(), "127.0.0.1:0".into()),
        ("SCHEDULER_DB_POOL_SIZE".into(), "4".into()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    let config = gathering_scheduler::Config::from_vars(&vars).unwrap();
    let shutdown = Shutdown::new();
    let started = gathering_scheduler::start(config, shutdown.clone())
        .await
        .unwrap();
    Instance { shutdown, started }
}

pub async fn agent(pool: &gathering_db::Pool) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('scheduled') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// The next whole second at least `lead` from now (database clock).
pub async fn whole_second_after(pool: &gathering_db::Pool, lead: Duration) -> DateTime<Utc> {
    let client = pool.get().await.unwrap();
    client
        .query_one(
            "SELECT date_trunc('second', now() + $1::int8 * interval '1 millisecond') + interval '1 second'",
            &[&(lead.as_millis() as i64)],
        )
        .await
        .unwrap()
        .get(0)
}

/// A cron schedule created directly in the table (as the edge would), with its first due time.
pub struct Cron<'a> {
    pub agent: i64,
    pub cron: &'a str,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub allow_concurrent: bool,
    pub policy: &'a str,
    pub max_executions: Option<i32>,
}

impl<'a> Cron<'a> {
    pub fn every_second(agent: i64) -> Self {
        Cron {
            agent,
            cron: "* * * * * *",
            start: None,
            end: None,
            allow_concurrent: true,
            policy: "run_once",
            max_executions: None,
        }
    }

    pub async fn insert(&self, pool: &gathering_db::Pool) -> i64 {
        let client = pool.get().await.unwrap();
        let now: DateTime<Utc> = client.query_one("SELECT now()", &[]).await.unwrap().get(0);
        let timing = gathering_schedule::Timing::from_fields(&gathering_schedule::TimingFields {
            schedule_type: "cron",
            cron_expression: Some(self.cron),
            ..Default::default()
        })
        .unwrap();
        let next = timing.first_due(now, self.start);
        client
            .query_one(
                "INSERT INTO circle.scheduled_actions (agent_id, name, goal, schedule_type, cron_expression, \
                 action_type, action_config, start_date, end_date, allow_concurrent, missed_run_policy, \
                 max_executions, next_run_at) \
                 VALUES ($1, 'test', 'g', 'cron', $2, 'send_notification', \
                 '{\"url\": \"http://127.0.0.1:9/\", \"payload\": {}}', COALESCE($3, now()), $4, $5, $6, $7, $8) \
                 RETURNING id",
                &[
                    &self.agent,
                    &self.cron,
                    &self.start,
                    &self.end,
                    &self.allow_concurrent,
                    &self.policy,
                    &self.max_executions,
                    &next,
                ],
            )
            .await
            .unwrap()
            .get(0)
    }
}

/// `(scheduled_for, triggered_at, triggered_by, status)` of a schedule's runs, by due time.
pub async fn runs(
    pool: &gathering_db::Pool,
    action: i64,
) -> Vec<(Option<DateTime<Utc>>, DateTime<Utc>, String, String)> {
    pool.get()
        .await
        .unwrap()
        .query(
            "SELECT scheduled_for, triggered_at, triggered_by, status::text FROM circle.scheduled_action_runs \
             WHERE scheduled_action_id = $1 ORDER BY scheduled_for, id",
            &[&action],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

pub async fn sleep_until(t: DateTime<Utc>) {
    let wait = (t - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
}

pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
