//! Real executors (in-process, the same `start` the binary runs) on a fresh database, pipelines
//! created and run through the same store functions the edge uses, and waiting for runs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_db::Pool;
use gathering_pipeline::store::{self, NewPipeline, SettingsPatch};
use gathering_pipeline::{NodeRunRow, RunRow, parse_definition};
use gathering_testkit::TestDb;
use serde_json::Value;

pub struct Executor {
    stop: Shutdown,
    started: gathering_executor::Started,
}

impl Executor {
    /// Where its admin endpoints (`/health/*`, `/metrics`) listen.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.started.admin_addr
    }

    pub async fn stop(self) {
        self.stop.trigger();
        self.started.wait().await.unwrap();
    }
}

pub struct Stack {
    pub db: TestDb,
    pub pool: Pool,
}

impl Stack {
    pub async fn new() -> Stack {
        let db = TestDb::new().await;
        let pool = db.pool(8);
        Stack { db, pool }
    }

    pub fn vars(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut v: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), self.db.url.clone()),
            ("GATHERING_ENV".into(), "development".into()),
            ("EXECUTOR_ADMIN_ADDR".into(), "127.0.0.1:0".into()),
            ("EXECUTOR_QUEUES".into(), "pipelines:8".into()),
            ("EXECUTOR_LEASE_SECONDS".into(), "2".into()),
            ("EXECUTOR_DB_POOL_SIZE".into(), "8".into()),
            ("GATHERING_HTTP_ALLOWLIST".into(), "127.0.0.1".into()),
            ("LLM_GATEWAY_URL".into(), "http://127.0.0.1:9".into()),
            ("AGENT_DEFAULT_MODEL".into(), "openai/gpt-4o".into()),
            ("AGENT_EMBEDDING_MODEL".into(), "none".into()),
        ]);
        for (k, val) in extra {
            v.insert((*k).into(), (*val).into());
        }
        v
    }

    pub async fn executor(&self, extra: &[(&str, &str)]) -> Executor {
        let config = gathering_executor::Config::from_vars(&self.vars(extra)).unwrap();
        let stop = Shutdown::new();
        let started = gathering_executor::start(config, stop.clone())
            .await
            .unwrap();
        Executor { stop, started }
    }

    /// Creates an active pipeline; `settings` may set timeout and retry defaults.
    pub async fn pipeline(&self, nodes: Value, edges: Value, settings: SettingsPatch) -> i64 {
        let def = parse_definition(&nodes, &edges).unwrap();
        let errors = gathering_pipeline::validate(&def);
        assert!(errors.is_empty(), "{errors:?}");
        let client = self.pool.get().await.unwrap();
        store::create_pipeline(
            &client,
            &NewPipeline {
                name: "test",
                description: None,
                status: "active",
                definition: &def,
                settings,
            },
        )
        .await
        .unwrap()
        .id
    }

    pub async fn run(&self, pipeline_id: i64, trigger: Value) -> i64 {
        let mut client = self.pool.get().await.unwrap();
        let run = store::start_run(&mut client, pipeline_id, &trigger)
            .await
            .unwrap();
        assert_eq!(run.status, "pending");
        run.id
    }

    pub async fn get(&self, run_id: i64) -> (RunRow, Vec<NodeRunRow>) {
        let client = self.pool.get().await.unwrap();
        let pid: i64 = client
            .query_one(
                "SELECT pipeline_id FROM circle.pipeline_runs WHERE id = $1",
                &[&run_id],
            )
            .await
            .unwrap()
            .get(0);
        store::get_run(&client, pid, run_id).await.unwrap().unwrap()
    }

    /// Waits until the run is final.
    pub async fn finished(&self, run_id: i64, secs: u64) -> (RunRow, Vec<NodeRunRow>) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (run, nodes) = self.get(run_id).await;
            if !run.is_live() {
                return (run, nodes);
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} still {} after {secs}s: {:?}",
                run.status,
                nodes
                    .iter()
                    .map(|n| (&n.node_id, &n.status, &n.error_message))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Event kinds of a run, in log order.
    pub async fn events(&self, run_id: i64) -> Vec<(String, Value)> {
        let client = self.pool.get().await.unwrap();
        client
            .query(
                "SELECT kind, payload FROM events.log WHERE $1 = ANY(topics) ORDER BY id",
                &[&format!("pipeline_runs:{run_id}")],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

pub fn node<'a>(nodes: &'a [NodeRunRow], id: &str) -> &'a NodeRunRow {
    nodes
        .iter()
        .find(|n| n.node_id == id)
        .unwrap_or_else(|| panic!("no node run '{id}'"))
}

pub fn statuses(nodes: &[NodeRunRow]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (n.node_id.clone(), n.status.clone()))
        .collect();
    v.sort();
    v
}
