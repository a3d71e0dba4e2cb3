//! Conversations through the whole stack: runs on executors, turn strategies, `start` that
//! answers the completed conversation, cancel from another edge, the `/ws` events and the
//! `/ws/conversation` stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gathering_testkit::fake_llm::Reply;
use gathering_testkit::ws;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::circles_stack::{Stack, default_reply, speaker, stack, user};

/// A running circle "talk" with ann, bob and cid; returns their ids.
async fn talk(s: &Stack) -> (i64, i64, i64) {
    let a = s.agent("ann").await;
    let b = s.agent("bob").await;
    let c = s.agent("cid").await;
    s.circle("talk", json!({}), &[(a, "", ""), (b, "", ""), (c, "", "")])
        .await;
    (a, b, c)
}

async fn create(s: &Stack, body: Value) -> i64 {
    let r = s
        .api(0)
        .post("/conversations?circle_name=talk", s.t(), &body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    r.body["id"].as_str().unwrap().parse().unwrap()
}

fn speakers(conv: &Value) -> Vec<String> {
    conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["agent_id"] != 0)
        .map(|m| m["agent_name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn round_robin_runs_on_an_executor_and_start_answers_it_completed() {
    let s = stack(1, 1).await;
    let (a, b, c) = talk(&s).await;
    let id = create(&s, json!({"topic": "Release plan", "agent_ids": [a, b, c], "max_turns": 4, "initial_prompt": "What ships first?"})).await;
    let mut events = ws::connect(&format!(
        "{}/ws?token={}",
        s.edges[0].base.replace("http", "ws"),
        s.token
    ))
    .await;
    ws::next_json(&mut events, Duration::from_secs(10)).await; // connected
    ws::send_json(
        &mut events,
        &json!({"action": "subscribe", "topics": [format!("conversations:{id}")]}),
    )
    .await;
    ws::next_json(&mut events, Duration::from_secs(10)).await; // subscribed

    let r = s
        .api(0)
        .post(&format!("/conversations/{id}/start"), s.t(), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["turns_taken"], 4);
    assert_eq!(speakers(&r.body), vec!["ann", "bob", "cid", "ann"]);
    assert_eq!(r.body["messages"][1]["content"], "bob speaks");
    assert_eq!(r.body["summary"], "Summary of the talk");
    assert!(
        r.body["transcript"]
            .as_str()
            .unwrap()
            .starts_with("ann: ann speaks\n\nbob: bob speaks")
    );
    assert!(r.body["duration_seconds"].as_f64().unwrap() >= 0.0);

    // Each turn saw the transcript so far; the first one the initial prompt.
    let turns: Vec<_> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| user(&r.body).contains("C'est ton tour"))
        .collect();
    assert_eq!(turns.len(), 4, "one model call per turn");
    assert!(user(&turns[0].body).contains("What ships first?"));
    assert!(user(&turns[2].body).contains("bob: bob speaks"));
    assert_eq!(turns[0].body["stream"], true, "turns stream");

    let mut received = Vec::new();
    while received.len() < 4 {
        let m = ws::next_json(&mut events, Duration::from_secs(10)).await;
        if m["type"] == "conversation.message" {
            received.push(m["data"]["agent_name"].as_str().unwrap().to_owned());
            assert_eq!(m["data"]["conversation_id"], id);
        }
    }
    assert_eq!(received, vec!["ann", "bob", "cid", "ann"]);

    let t = s
        .api(0)
        .get(&format!("/conversations/{id}/transcript"), s.t())
        .await
        .body;
    assert_eq!(
        (t["conversation_id"].as_str(), t["topic"].as_str()),
        (Some(id.to_string().as_str()), Some("Release plan"))
    );
    let m = s
        .api(0)
        .get(&format!("/conversations/{id}/messages"), s.t())
        .await
        .body;
    assert_eq!(m["messages"].as_array().unwrap().len(), 4);
    let list = s.api(0).get("/conversations", s.t()).await.body;
    assert_eq!(
        (
            list["total"].as_i64(),
            list["conversations"][0]["turns_taken"].as_i64()
        ),
        (Some(1), Some(4))
    );

    // Advance: the user's message, then up to min(5, max_turns) more turns.
    let r = s
        .api(0)
        .post(
            &format!("/conversations/{id}/advance"),
            s.t(),
            &json!({"prompt": "@cid, and the budget?"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["turns_taken"].as_i64()),
        (Some("completed"), Some(8))
    );
    let msgs = r.body["messages"].as_array().unwrap();
    assert_eq!(
        (msgs[4]["agent_id"].as_i64(), msgs[4]["agent_name"].as_str()),
        (Some(0), Some("User"))
    );
    assert_eq!(msgs[5]["agent_name"], "bob", "round robin after ann");
    let r = s
        .api(0)
        .post(&format!("/conversations/{id}/start"), s.t(), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "only pending starts");
    s.stop().await;
}

#[tokio::test]
async fn mentions_and_the_facilitator_choose_the_next_speaker() {
    let s = stack(1, 1).await;
    let (a, b, c) = talk(&s).await;
    // mention_based: ann hands over to cid, cid mentions nobody (round robin: ann).
    s.fake.respond_with(|body| {
        if user(body).contains("C'est ton tour") && speaker(body) == "ann" {
            return Some(Reply::text("I think @Cid knows better."));
        }
        default_reply(body)
    });
    let id = create(&s, json!({"topic": "Mentions", "agent_ids": [a, b, c], "max_turns": 3, "turn_strategy": "mention_based"})).await;
    let r = s
        .api(0)
        .post(&format!("/conversations/{id}/start"), s.t(), &json!({}))
        .await;
    assert_eq!(speakers(&r.body), vec!["ann", "cid", "ann"]);
    assert_eq!(r.body["messages"][0]["mentions"], json!(["cid"]));

    // free_form: the facilitator picks bob, then cid, then answers nonsense (round robin).
    let picks = Arc::new(AtomicUsize::new(0));
    let n = picks.clone();
    s.fake.respond_with(move |body| {
        if user(body).contains("Qui doit parler") {
            return Some(match n.fetch_add(1, Ordering::SeqCst) {
                0 => Reply::text(r#"{"next_speaker": "bob"}"#),
                1 => Reply::text("```json\n{\"next_speaker\": \"cid\"}\n```"),
                _ => Reply::text(r#"{"next_speaker": "nobody"}"#),
            });
        }
        default_reply(body)
    });
    let id = create(&s, json!({"topic": "Free", "agent_ids": [a, b, c], "max_turns": 3, "turn_strategy": "free_form"})).await;
    let r = s
        .api(0)
        .post(&format!("/conversations/{id}/start"), s.t(), &json!({}))
        .await;
    assert_eq!(speakers(&r.body), vec!["bob", "cid", "ann"], "{:?}", r.body);
    assert_eq!(
        picks.load(Ordering::SeqCst),
        3,
        "one facilitator call per turn"
    );
    let asked = s
        .fake
        .requests()
        .into_iter()
        .find(|r| user(&r.body).contains("Qui doit parler"))
        .unwrap();
    assert!(
        user(&asked.body).contains("ann, bob, cid"),
        "eligible participants listed"
    );

    let r = s
        .api(0)
        .post(
            "/conversations?circle_name=talk",
            s.t(),
            &json!({"topic": "x", "agent_ids": [a], "turn_strategy": "chaos"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .api(0)
        .post(
            "/conversations?circle_name=talk",
            s.t(),
            &json!({"topic": "x", "agent_ids": [a], "max_turns": 51}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .api(0)
        .post(
            "/conversations?circle_name=nope",
            s.t(),
            &json!({"topic": "x", "agent_ids": [a]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.api(0).get("/conversations/abc", s.t()).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("Conversation 'abc' not found"))
    );
    s.stop().await;
}

#[tokio::test]
async fn cancel_from_another_edge_stops_a_running_conversation() {
    let s = stack(2, 1).await;
    let (a, b, _) = talk(&s).await;
    s.fake.respond_with(|body| {
        if user(body).contains("C'est ton tour") {
            return Some(Reply::text("slow thoughts").delay(Duration::from_secs(30)));
        }
        default_reply(body)
    });
    let id = create(
        &s,
        json!({"topic": "Slow", "agent_ids": [a, b], "max_turns": 5}),
    )
    .await;
    let api = s.api(0);
    let token = s.token.clone();
    let start = tokio::spawn(async move {
        api.post(
            &format!("/conversations/{id}/start"),
            Some(&token),
            &json!({}),
        )
        .await
    });
    assert!(
        s.fake.wait_requests(1, Duration::from_secs(20)).await,
        "the first turn began"
    );
    let r = s
        .api(1)
        .post(&format!("/conversations/{id}/cancel"), s.t(), &json!({}))
        .await;
    assert_eq!(r.body, json!({"status": "cancelled"}));
    // The executor drops the model call in flight (the queue's cancel reached it).
    assert!(
        s.fake.wait_cancelled(1, Duration::from_secs(10)).await,
        "the turn in flight was abandoned"
    );
    let r = start.await.unwrap();
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(r.body["turns_taken"], 0);
    let r = s
        .api(1)
        .post(&format!("/conversations/{id}/cancel"), s.t(), &json!({}))
        .await;
    assert_eq!(r.body, json!({"status": "already_finished"}));
    let r = s
        .api(1)
        .send(
            s.api(1)
                .client
                .delete(format!("{}/conversations/{id}", s.edges[1].base))
                .bearer_auth(&s.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.api(0)
            .get(&format!("/conversations/{id}"), s.t())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test]
async fn the_conversation_socket_streams_turns_and_quick_answers_completed() {
    let s = stack(1, 1).await;
    let (a, b, _) = talk(&s).await;
    s.fake.respond_with(|body| {
        if user(body).contains("C'est ton tour") {
            return Some(Reply::text(format!(
                "{} has a rather long answer to give here",
                speaker(body)
            )));
        }
        default_reply(body)
    });
    let id = create(
        &s,
        json!({"topic": "Stream", "agent_ids": [a, b], "max_turns": 2}),
    )
    .await;
    let url = format!(
        "{}/ws/conversation/{id}?token={}",
        s.edges[0].base.replace("http", "ws"),
        s.token
    );
    let mut socket = ws::connect(&url).await;
    let hello = ws::next_json(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(hello["type"], "connected");
    assert_eq!(
        (hello["conv_id"].as_i64(), hello["participants"].clone()),
        (Some(id), json!(["ann", "bob"]))
    );
    ws::send_json(&mut socket, &json!({"action": "ping"})).await;
    assert_eq!(
        ws::next_json(&mut socket, Duration::from_secs(10)).await["type"],
        "pong"
    );

    // Turn by turn from the socket (a pending conversation starts).
    for (turn, name) in [(1, "ann"), (2, "bob")] {
        ws::send_json(&mut socket, &json!({"action": "advance"})).await;
        let start = ws::next_json(&mut socket, Duration::from_secs(20)).await;
        assert_eq!(
            (
                start["type"].as_str(),
                start["turn"].as_i64(),
                start["agent_name"].as_str()
            ),
            (Some("turn_start"), Some(turn), Some(name))
        );
        let mut text = String::new();
        let end = loop {
            let m = ws::next_json(&mut socket, Duration::from_secs(20)).await;
            match m["type"].as_str() {
                Some("token") => {
                    let piece = m["content"].as_str().unwrap();
                    assert!(piece.chars().count() <= 20);
                    text.push_str(piece);
                }
                Some("turn_end") => break m,
                Some("conversation_complete") => continue,
                other => panic!("unexpected {other:?}: {m}"),
            }
        };
        let expected = format!("{name} has a rather long answer to give here");
        assert_eq!(end["content"], expected.as_str());
        assert_eq!(end["turn"], turn);
        assert_eq!(text, expected, "the tokens make up the turn");
        let done = ws::next_json(&mut socket, Duration::from_secs(20)).await;
        assert_eq!(
            (done["type"].as_str(), done["turns_taken"].as_i64()),
            (Some("conversation_complete"), Some(turn))
        );
    }
    ws::send_json(&mut socket, &json!({"action": "dance"})).await;
    assert_eq!(
        ws::next_json(&mut socket, Duration::from_secs(10)).await["message"],
        "Unknown action: dance"
    );

    let r = s
        .api(0)
        .post(
            "/conversations/quick?circle_name=talk",
            s.t(),
            &json!({"topic": "Quick", "agent_ids": [b, a], "max_turns": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "quick answers 200: {:?}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["turns_taken"].as_i64()),
        (Some("completed"), Some(2))
    );
    assert_eq!(speakers(&r.body), vec!["bob", "ann"]);
    s.stop().await;
}

#[tokio::test]
async fn heavy_two_edges_and_two_executors_store_each_turn_once() {
    let s = stack(2, 2).await;
    let (a, b, c) = talk(&s).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let r = s
            .api(i % 2)
            .post(
                "/conversations?circle_name=talk",
                s.t(),
                &json!({"topic": format!("topic {i}"), "agent_ids": [a, b, c], "max_turns": 5}),
            )
            .await;
        ids.push(r.body["id"].as_str().unwrap().parse::<i64>().unwrap());
    }
    let mut starts = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let api = s.api(i % 2);
        let token = s.token.clone();
        let id = *id;
        starts.push(tokio::spawn(async move {
            api.post(
                &format!("/conversations/{id}/start"),
                Some(&token),
                &json!({}),
            )
            .await
        }));
    }
    for st in starts {
        let r = st.await.unwrap();
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (StatusCode::OK, Some("completed")),
            "{:?}",
            r.body
        );
        assert_eq!(r.body["messages"].as_array().unwrap().len(), 5);
    }
    let requests = s.fake.requests();
    for id in &ids {
        let topic_turns = requests
            .iter()
            .filter(|r| user(&r.body).contains("C'est ton tour"))
            .filter(|r| {
                system(&r.body).contains(&format!(
                    "« topic {} »",
                    ids.iter().position(|x| x == id).unwrap()
                ))
            })
            .count();
        assert_eq!(topic_turns, 5, "conversation {id}: one model call per turn");
    }
    let c = s.db.pool(1).get().await.unwrap();
    let dup: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT conversation_id, turn FROM communication.messages \
             GROUP BY 1, 2 HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dup, 0);
    drop(c);
    s.stop().await;
}

fn system(body: &Value) -> String {
    crate::circles_stack::system(body)
}
