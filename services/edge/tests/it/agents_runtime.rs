//! Agents through the whole stack: edge → LLM gateway → a fake OpenAI provider, tool calls
//! through the registry, the streaming WebSocket, one message at a time across edges, and
//! background tasks run by a real executor, paused/resumed/cancelled from another edge.

use std::collections::HashMap;
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use gathering_testkit::ws;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, Auth, Edge, start_auth, start_edge};

const PW: &str = "correct horse battery";

pub struct Stack {
    pub db: TestDb,
    pub fake: FakeProvider,
    pub auth: Auth,
    pub gateway_url: String,
    pub gateway_stop: Shutdown,
    pub edges: Vec<Edge>,
    pub agent_id: i64,
    pub token: String,
}

fn vars(db: &TestDb, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), (*val).into());
    }
    v
}

/// Auth, an LLM gateway on a fake OpenAI, `edges` edges, an agent with the http skill.
pub async fn stack(edges: usize) -> Stack {
    let db = TestDb::new().await;
    let fake = FakeProvider::start(Wire::OpenAi).await;
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
                    ("BACKGROUND_TASKS_MAX_CONCURRENT", "2"),
                ],
            )
            .await,
        );
    }
    let client = db.pool(1).get().await.unwrap();
    let agent_id: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name, persona_id, model_id) VALUES ('Sophie', \
                 (SELECT id FROM agent.personas ORDER BY id LIMIT 1), \
                 (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                  WHERE p.name = 'openai' AND m.model_name = 'gpt-4o')) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO agent.agent_tools (agent_id, skill_id, is_enabled) SELECT $1, id, true FROM agent.skills WHERE name = 'http'",
            &[&agent_id],
        )
        .await
        .unwrap();
    let (token, _) = started[0].api().user("chat@example.com", PW).await;
    Stack {
        db,
        fake,
        auth,
        gateway_url,
        gateway_stop,
        edges: started,
        agent_id,
        token,
    }
}

impl Stack {
    pub fn api(&self, i: usize) -> Api {
        self.edges[i].api()
    }

    pub async fn stop(self) {
        for e in self.edges {
            e.stop().await;
        }
        self.auth.stop().await;
        self.gateway_stop.trigger();
    }

    /// A real executor serving the agents queue.
    pub async fn executor(&self) -> (Shutdown, gathering_executor::Started) {
        let config = gathering_executor::Config::from_vars(&vars(
            &self.db,
            &[
                ("EXECUTOR_ADMIN_ADDR", "127.0.0.1:0"),
                ("LLM_GATEWAY_URL", self.gateway_url.as_str()),
                ("AGENT_DEFAULT_MODEL", "openai/gpt-4o"),
                ("AGENT_EMBEDDING_MODEL", "none"),
                ("EXECUTOR_QUEUES", "agents:4"),
            ],
        ))
        .unwrap();
        let stop = Shutdown::new();
        let started = gathering_executor::start(config, stop.clone())
            .await
            .unwrap();
        (stop, started)
    }
}

#[tokio::test]
async fn a_chat_calls_a_tool_and_uses_its_result() {
    let s = stack(1).await;
    s.fake.push(Reply::tool_call(
        "build_url",
        json!({"base": "https://example.com", "path": "docs", "params": {"q": "rust"}}),
    ));
    s.fake
        .push(Reply::text("The page is https://example.com/docs?q=rust"));
    let api = s.api(0);
    let r = api
        .post(
            &format!("/agents/{}/chat", s.agent_id),
            Some(&s.token),
            &json!({"message": "Build me the docs URL"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["content"],
        "The page is https://example.com/docs?q=rust"
    );
    assert_eq!(r.body["agent_name"], "Sophie");
    assert_eq!(r.body["tool_calls"][0]["name"], "build_url");
    assert_eq!(r.body["tool_results"][0]["success"], true);
    assert!(r.body["tokens_used"].as_u64().unwrap() > 0);

    // The model saw the tool's real result in the second call.
    let requests = s.fake.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0].body;
    assert!(
        first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "build_url"),
        "tools offered"
    );
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Tu es Sophie"),
        "persona in the system prompt"
    );
    let second = &requests[1].body["messages"];
    let tool_msg = second
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("a tool message");
    assert!(
        tool_msg["content"]
            .as_str()
            .unwrap()
            .contains("https://example.com/docs?q=rust"),
        "{tool_msg}"
    );

    // Stored: two chat_history rows; the history endpoint is the helper's, the rows are ours.
    let client = s.db.pool(1).get().await.unwrap();
    let rows = client
        .query("SELECT role::text, content, model_used FROM communication.chat_history WHERE agent_id = $1 ORDER BY id", &[&s.agent_id])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, String>(0), "user");
    assert_eq!(
        rows[1].get::<_, String>(1),
        "The page is https://example.com/docs?q=rust"
    );

    // The next message carries the history.
    s.fake.push(Reply::text("Yes."));
    let r = api
        .post(
            &format!("/agents/{}/chat", s.agent_id),
            Some(&s.token),
            &json!({"message": "Sure?"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let msgs = s.fake.requests()[2].body["messages"].clone();
    assert!(
        msgs.as_array()
            .unwrap()
            .iter()
            .any(|m| m["content"] == "Build me the docs URL"),
        "history sent"
    );

    let missing = api
        .post(
            "/agents/999999/chat",
            Some(&s.token),
            &json!({"message": "hi"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["detail"], "Agent 999999 not found");
    let empty = api
        .post(
            &format!("/agents/{}/chat", s.agent_id),
            Some(&s.token),
            &json!({"message": "  "}),
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    s.stop().await;
}

#[tokio::test]
async fn streaming_chat_over_the_websocket() {
    let s = stack(1).await;
    s.fake.push(Reply::text(
        "Bonjour, je suis Sophie et je réponds en plusieurs morceaux.",
    ));
    let url = format!(
        "{}/ws/chat/{}?token={}",
        s.edges[0].base.replacen("http://", "ws://", 1),
        s.agent_id,
        s.token
    );
    let mut socket = ws::connect(&url).await;
    let hello = ws::next_json(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(
        hello,
        json!({"type": "connected", "agent_id": s.agent_id, "agent_name": "Sophie"})
    );
    ws::send_json(&mut socket, &json!({"message": ""})).await;
    assert_eq!(
        ws::next_json(&mut socket, Duration::from_secs(10)).await["message"],
        "No message provided"
    );

    ws::send_json(&mut socket, &json!({"message": "Présente-toi"})).await;
    let start = ws::next_json(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(start["type"], "start");
    let mut streamed = String::new();
    let mut tokens = 0;
    let done = loop {
        let m = ws::next_json(&mut socket, Duration::from_secs(10)).await;
        match m["type"].as_str() {
            Some("token") => {
                tokens += 1;
                streamed.push_str(m["content"].as_str().unwrap());
            }
            Some("done") => break m,
            other => panic!("unexpected {other:?}: {m}"),
        }
    };
    assert!(tokens > 1, "streamed in several tokens");
    assert_eq!(
        streamed,
        "Bonjour, je suis Sophie et je réponds en plusieurs morceaux."
    );
    assert_eq!(done["content"], streamed);
    assert_eq!(
        s.fake.requests()[0].body["stream"],
        true,
        "the provider was asked to stream"
    );

    let bad = format!(
        "{}/ws/chat/{}",
        s.edges[0].base.replacen("http://", "ws://", 1),
        s.agent_id
    );
    let mut refused = ws::connect(&bad).await;
    match ws::next(&mut refused, Duration::from_secs(5)).await {
        ws::Next::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1008),
        _ => panic!("no token must be refused"),
    }
    s.stop().await;
}

#[tokio::test]
async fn one_message_at_a_time_per_agent_across_edges() {
    let s = stack(2).await;
    s.fake
        .push(Reply::text("slow answer").delay(Duration::from_millis(1500)));
    let a = s.api(0);
    let path = format!("/agents/{}/chat", s.agent_id);
    let token = s.token.clone();
    let first = {
        let (a, path, token) = (a.clone(), path.clone(), token.clone());
        tokio::spawn(async move {
            a.post(&path, Some(&token), &json!({"message": "first"}))
                .await
        })
    };
    assert!(
        s.fake.wait_requests(1, Duration::from_secs(10)).await,
        "the first chat reached the model"
    );
    let second = s
        .api(1)
        .post(&path, Some(&token), &json!({"message": "second"}))
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(
        second.body["detail"],
        "Agent is already processing a message"
    );
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["content"], "slow answer");
    // Released: the next one goes through, on the other edge.
    s.fake.push(Reply::text("now free"));
    let third = s
        .api(1)
        .post(&path, Some(&token), &json!({"message": "third"}))
        .await;
    assert_eq!(third.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn the_ai_and_platform_skills_run_through_the_tool_registry() {
    let s = stack(1).await;
    // The test user is not an admin: run tools as an admin of the dev no-auth mode instead.
    let admin = start_edge(
        &s.db,
        &s.auth,
        &[
            ("DISABLE_AUTH", "true"),
            ("LLM_GATEWAY_URL", s.gateway_url.as_str()),
            ("AGENT_DEFAULT_MODEL", "openai/gpt-4o"),
            ("AGENT_EMBEDDING_MODEL", "none"),
        ],
    )
    .await;
    let api = admin.api();
    let run = |tool: &'static str, input: Value| {
        let api = api.clone();
        async move {
            api.post(
                "/tools/execute",
                None,
                &json!({"tool": tool, "input": input}),
            )
            .await
        }
    };

    s.fake.push(Reply::text("A short summary."));
    let r = run(
        "ai_summarize",
        json!({"text": "A very long text about Rust.", "max_words": 20}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["success"], true, "{:?}", r.body);
    assert_eq!(r.body["data"]["content"], "A short summary.");
    let sent = s.fake.requests().last().unwrap().body.clone();
    assert!(
        sent["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("at most 20 words")
    );

    s.fake
        .push(Reply::text("{\"city\": \"Paris\", \"year\": 2026}"));
    let r = run(
        "ai_extract",
        json!({"text": "Paris, 2026", "fields": ["city", "year"]}),
    )
    .await;
    assert_eq!(
        r.body["data"]["fields"],
        json!({"city": "Paris", "year": 2026}),
        "{:?}",
        r.body
    );

    let bad = run("ai_translate", json!({"text": "hi"})).await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing target_language is a validation error"
    );

    let r = run(
        "task_start",
        json!({"agent_id": s.agent_id, "goal": "Tidy up"}),
    )
    .await;
    assert_eq!(r.body["success"], true, "{:?}", r.body);
    let task_id = r.body["data"]["id"].as_i64().unwrap();
    let list = run("task_list", json!({"status": "pending"})).await;
    assert_eq!(list.body["data"]["tasks"][0]["id"], task_id);
    let r = run("task_cancel", json!({"task_id": task_id})).await;
    assert_eq!(r.body["data"]["status"], "cancelled");
    let r = run("task_get", json!({"task_id": task_id})).await;
    assert_eq!(r.body["data"]["status"], "cancelled");

    assert_eq!(run("pipeline_list", json!({})).await.body["success"], true);
    assert_eq!(run("schedule_list", json!({})).await.body["success"], true);
    let missing = run("schedule_run_now", json!({"action_id": 999})).await;
    assert_eq!(missing.body["success"], false);

    // Pause and resume through the tools behave as through the API: an event each, and a
    // recurring schedule resumes from now (its paused time is not "missed").
    let r = api
        .post(
            "/scheduled-actions",
            None,
            &json!({"agent_id": s.agent_id, "name": "hourly", "goal": "g",
                    "schedule_type": "cron", "cron_expression": "0 * * * *"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let action = r.body["id"].as_i64().unwrap();
    let r = run("schedule_pause", json!({"action_id": action})).await;
    assert_eq!(r.body["data"]["status"], "paused", "{:?}", r.body);
    let again = run("schedule_pause", json!({"action_id": action})).await;
    assert_eq!(
        again.body["success"], false,
        "only an active schedule pauses"
    );
    let db = s.db.pool(1);
    let c = db.get().await.unwrap();
    c.execute(
        "UPDATE circle.scheduled_actions SET next_run_at = '2000-01-01Z' WHERE id = $1",
        &[&action],
    )
    .await
    .unwrap();
    let r = run("schedule_resume", json!({"action_id": action})).await;
    assert_eq!(r.body["data"]["status"], "active", "{:?}", r.body);
    let row = c
        .query_one(
            "SELECT status::text, next_run_at > now(), \
                    (SELECT count(*) FROM events.log WHERE kind IN \
                        ('scheduled_action.paused', 'scheduled_action.resumed') \
                     AND (payload->>'action_id')::int8 = $1) \
             FROM circle.scheduled_actions WHERE id = $1",
            &[&action],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "active");
    assert!(
        row.get::<_, bool>(1),
        "resumed from now, not from the paused time"
    );
    assert_eq!(row.get::<_, i64>(2), 2, "one event per change");
    admin.stop().await;
    s.stop().await;
}
