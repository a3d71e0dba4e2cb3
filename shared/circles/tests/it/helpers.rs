//! A database with agents and a running circle.

use gathering_circles::circles::{self, NewCircle, NewMember};
use gathering_circles::tasks::{self, NewTask};
use gathering_circles::{Circles, CirclesConfig};
use gathering_testkit::TestDb;
use serde_json::Value;

pub struct Env {
    pub _db: TestDb,
    pub pool: gathering_db::Pool,
    pub circles: Circles,
}

pub async fn env() -> Env {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let circles = Circles::new(pool.clone(), CirclesConfig::default());
    Env {
        _db: db,
        pool,
        circles,
    }
}

impl Env {
    pub async fn agent(&self, name: &str) -> i64 {
        self.pool
            .get()
            .await
            .unwrap()
            .query_one(
                "INSERT INTO agent.agents (name) VALUES ($1) RETURNING id",
                &[&name],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// A running circle.
    pub async fn circle(&self, name: &str, require_review: bool, max_rounds: Option<i32>) {
        circles::create(
            &self.circles,
            &NewCircle {
                name: name.into(),
                display_name: None,
                description: None,
                require_review,
                auto_route: true,
                max_concurrent_tasks: 5,
                project_id: None,
                max_review_rounds: max_rounds,
                owner: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            circles::start(&self.circles, name).await.unwrap(),
            "started"
        );
    }

    pub async fn join(&self, circle: &str, agent: i64, comps: &[&str], review: &[&str]) {
        circles::add_member(
            &self.circles,
            circle,
            &NewMember {
                agent_id: agent,
                role: None,
                competencies: comps.iter().map(|s| s.to_string()).collect(),
                can_review: review.iter().map(|s| s.to_string()).collect(),
            },
            false,
        )
        .await
        .unwrap();
    }

    pub async fn task(
        &self,
        circle: &str,
        title: &str,
        required: &[&str],
        resources: &[&str],
    ) -> Value {
        tasks::create(
            &self.circles,
            circle,
            &NewTask {
                title: title.into(),
                required_competencies: required.iter().map(|s| s.to_string()).collect(),
                priority: 5,
                resources: resources.iter().map(|s| s.to_string()).collect(),
                ..NewTask::default()
            },
        )
        .await
        .unwrap()
    }

    pub async fn scalar<T: for<'a> gathering_db::tokio_postgres::types::FromSql<'a>>(
        &self,
        sql: &str,
        params: &[&(dyn gathering_db::tokio_postgres::types::ToSql + Sync)],
    ) -> T {
        self.pool
            .get()
            .await
            .unwrap()
            .query_one(sql, params)
            .await
            .unwrap()
            .get(0)
    }

    /// Kinds of the events published so far, in order.
    pub async fn event_kinds(&self) -> Vec<String> {
        self.pool
            .get()
            .await
            .unwrap()
            .query("SELECT kind FROM events.log ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}
