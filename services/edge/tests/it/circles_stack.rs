//! A stack for circle and conversation tests: an LLM gateway on a fake OpenAI provider that
//! answers from the request (work, review, turn, facilitator, summary), auth, edges and
//! in-process executors serving the `circles` queue, and agents with a model.

use std::collections::HashMap;

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, Auth, Edge, eventually, start_auth, start_edge};

pub struct Stack {
    pub db: TestDb,
    pub fake: FakeProvider,
    pub auth: Auth,
    gateway_stop: Shutdown,
    pub gateway_url: String,
    pub edges: Vec<Edge>,
    pub executors: Vec<(Shutdown, gathering_executor::Started)>,
    pub token: String,
}

fn vars(db: &TestDb, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        // Tests make their project folders in the system's temporary folder.
        (
            "GATHERING_PROJECT_ROOTS".into(),
            std::env::temp_dir().display().to_string(),
        ),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), (*val).into());
    }
    v
}

/// The system prompt of a request to the fake.
pub fn system(body: &Value) -> String {
    body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The last user message of a request to the fake.
pub fn user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The agent a request speaks as ("Tu es {name}, …" in its system prompt).
pub fn speaker(body: &Value) -> String {
    let s = system(body);
    s.split("Tu es ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default()
        .to_owned()
}

pub fn is_review(body: &Value) -> bool {
    system(body).contains("Tu relis le travail")
}

/// The task id of a work prompt ("Tâche #12 du cercle …").
pub fn work_task(body: &Value) -> Option<i64> {
    user(body)
        .strip_prefix("Tâche #")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// The task id of a review prompt ("Relis la tâche #12 …").
pub fn review_task(body: &Value) -> Option<i64> {
    let u = user(body);
    u.split("Relis la tâche #")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

pub fn verdict(approve: bool, comments: &str) -> Reply {
    Reply::text(
        json!({"verdict": if approve {"approve"} else {"request_changes"}, "comments": comments, "quality_score": 0.8})
            .to_string(),
    )
}

/// The default answers: work "{title} done by {agent}", reviews approve, turns
/// "{agent}: point {turn}", summaries "Summary".
pub fn default_reply(body: &Value) -> Option<Reply> {
    let u = user(body);
    if is_review(body) {
        return Some(verdict(true, "good"));
    }
    if let Some(title) = u
        .strip_prefix("Tâche #")
        .and_then(|r| r.split(" : ").nth(1))
    {
        let title = title.lines().next().unwrap_or_default();
        return Some(Reply::text(format!("{title} done by {}", speaker(body))));
    }
    if u.starts_with("Résume en quelques phrases") {
        return Some(Reply::text("Summary of the talk"));
    }
    if u.contains("C'est ton tour") {
        return Some(Reply::text(format!("{} speaks", speaker(body))));
    }
    None
}

pub async fn stack(edges: usize, executors: usize) -> Stack {
    let db = TestDb::new().await;
    let fake = FakeProvider::start(Wire::OpenAi).await;
    fake.respond_with(default_reply);
    let base = fake.base_url();
    let gw = gathering_llm_gateway::Config::from_vars(&vars(
        &db,
        &[
            ("LLM_GATEWAY_ADDR", "127.0.0.1:0"),
            ("LLM_GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "sk-test-key"),
        ],
    ))
    .unwrap();
    let gateway_stop = Shutdown::new();
    let gateway = gathering_llm_gateway::start(gw, gateway_stop.clone())
        .await
        .unwrap();
    let gateway_url = format!("http://{}", gateway.grpc_addr);
    let auth = start_auth(&db, &[]).await;
    let mut started = Vec::new();
    for _ in 0..edges {
        started.push(
            start_edge(
                &db,
                &auth,
                &[
                    ("LLM_GATEWAY_URL", gateway_url.as_str()),
                    ("AGENT_DEFAULT_MODEL", "openai/gpt-4o"),
                    ("AGENT_EMBEDDING_MODEL", "none"),
                    ("CONVERSATION_START_WAIT_SECONDS", "30"),
                ],
            )
            .await,
        );
    }
    let (token, _) = started[0]
        .api()
        .user("circles@example.com", "correct horse battery")
        .await;
    let mut s = Stack {
        db,
        fake,
        auth,
        gateway_stop,
        gateway_url,
        edges: started,
        executors: Vec::new(),
        token,
    };
    for _ in 0..executors {
        s.start_executor().await;
    }
    s
}

impl Stack {
    pub fn api(&self, i: usize) -> Api {
        self.edges[i].api()
    }

    pub fn t(&self) -> Option<&str> {
        Some(&self.token)
    }

    pub async fn start_executor(&mut self) {
        let config = gathering_executor::Config::from_vars(&vars(
            &self.db,
            &[
                ("EXECUTOR_ADMIN_ADDR", "127.0.0.1:0"),
                ("LLM_GATEWAY_URL", self.gateway_url.as_str()),
                ("AGENT_DEFAULT_MODEL", "openai/gpt-4o"),
                ("AGENT_EMBEDDING_MODEL", "none"),
                ("EXECUTOR_QUEUES", "circles:8"),
                ("CONVERSATION_TURN_TIMEOUT_SECONDS", "20"),
                ("EXECUTOR_SHUTDOWN_TIMEOUT_SECONDS", "1"),
            ],
        ))
        .unwrap();
        let stop = Shutdown::new();
        let started = gathering_executor::start(config, stop.clone())
            .await
            .unwrap();
        self.executors.push((stop, started));
    }

    pub async fn stop(self) {
        for (stop, started) in self.executors {
            stop.trigger();
            let _ = started.wait().await;
        }
        for e in self.edges {
            e.stop().await;
        }
        self.auth.stop().await;
        self.gateway_stop.trigger();
    }

    /// An agent with the gateway's OpenAI model.
    pub async fn agent(&self, name: &str) -> i64 {
        self.db
            .pool(1)
            .get()
            .await
            .unwrap()
            .query_one(
                "INSERT INTO agent.agents (name, model_id) VALUES ($1, \
                     (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                      WHERE p.name = 'openai' AND m.model_name = 'gpt-4o')) RETURNING id",
                &[&name],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// A running circle (through the API) with these members `(agent, competencies, can_review)`.
    pub async fn circle(&self, name: &str, body: Value, members: &[(i64, &str, &str)]) {
        let api = self.api(0);
        let mut body = body;
        body["name"] = json!(name);
        let r = api.post("/circles", self.t(), &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        for (agent, comps, review) in members {
            let r = api
                .post(
                    &format!("/circles/{name}/agents?agent_id={agent}&competencies={comps}&can_review={review}"),
                    self.t(),
                    &json!({}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let r = api
            .post(&format!("/circles/{name}/start"), self.t(), &json!({}))
            .await;
        assert_eq!(r.body["status"], "started");
    }

    /// Waits until the task reaches `status` (at most `secs`), then returns it.
    pub async fn task_until(&self, circle: &str, id: i64, status: &str, secs: u64) -> Value {
        let api = self.api(0);
        let path = format!("/circles/{circle}/tasks/{id}");
        let reached = eventually(secs, || {
            let api = api.clone();
            let path = path.clone();
            let token = self.token.clone();
            async move { api.get(&path, Some(&token)).await.body["status"] == status }
        })
        .await;
        let task = api.get(&path, self.t()).await.body;
        assert!(reached, "task {id} never reached {status}: {task}");
        task
    }

    /// Event kinds about `task_id`, in log order.
    pub async fn task_events(&self, task_id: i64) -> Vec<String> {
        self.db
            .pool(1)
            .get()
            .await
            .unwrap()
            .query(
                "SELECT kind FROM events.log WHERE (payload->>'task_id')::int8 = $1 AND kind LIKE 'task.%' ORDER BY id",
                &[&task_id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}
