//! `/ws`: authentication, the protocol, delivery from the event log, resumption.

use std::time::Duration;

use gathering_events::{NewEvent, publish_in};
use gathering_testkit::TestDb;
use gathering_testkit::ws::{self, Next};
use serde_json::json;

use crate::support::{start_auth, start_edge};

const T: Duration = Duration::from_secs(10);

fn ws_url(base: &str, query: &str) -> String {
    format!("{}/ws{query}", base.replacen("http://", "ws://", 1))
}

#[tokio::test]
async fn a_socket_without_a_valid_token_is_closed_with_1008() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    for query in ["", "?token=garbage"] {
        let mut socket = ws::connect(&ws_url(&edge.base, query)).await;
        match ws::next(&mut socket, T).await {
            Next::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1008),
            other => panic!(
                "expected a 1008 close, got {}",
                matches!(other, Next::Json(_))
            ),
        }
    }
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn the_protocol_and_topic_delivery() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let (token, _) = edge
        .api()
        .user("ws@example.com", "correct horse battery")
        .await;
    let mut socket = ws::connect(&ws_url(&edge.base, &format!("?token={token}"))).await;
    let hello = ws::next_json(&mut socket, T).await;
    assert_eq!(hello["type"], "connected");
    assert!(
        hello["data"]["connection_id"]
            .as_str()
            .unwrap()
            .starts_with("ws-")
    );

    ws::send_json(&mut socket, &json!({"action": "ping"})).await;
    assert_eq!(ws::next_json(&mut socket, T).await["type"], "pong");
    ws::send_json(
        &mut socket,
        &json!({"action": "subscribe", "topics": ["agents"]}),
    )
    .await;
    let sub = ws::next_json(&mut socket, T).await;
    assert_eq!(
        (sub["type"].as_str(), &sub["data"]["topics"]),
        (Some("subscribed"), &json!(["agents"]))
    );
    ws::send_json(&mut socket, &json!({"action": "dance"})).await;
    let err = ws::next_json(&mut socket, T).await;
    assert_eq!(err["data"]["message"], "Unknown action: dance");
    ws::send_json(&mut socket, &json!({"action": "info"})).await;
    assert_eq!(
        ws::next_json(&mut socket, T).await["data"]["subscriptions"],
        json!(["agents"])
    );

    let pool = db.pool(2);
    let client = pool.get().await.unwrap();
    publish_in(
        &client,
        &[
            NewEvent::new("circle.started", json!({"n": 1})).topic("circles:x"),
            NewEvent::new("agent.busy", json!({"n": 2})).topic("agents:7"),
            NewEvent::new("system.warning", json!({"n": 3})),
        ],
    )
    .await
    .unwrap();
    let first = ws::next_json(&mut socket, T).await;
    assert_eq!(
        first["type"], "agent.busy",
        "the circles event is filtered out"
    );
    assert_eq!(first["data"]["n"], 2);
    let second = ws::next_json(&mut socket, T).await;
    assert_eq!(second["type"], "system.warning", "no topics: everyone");

    let stats = edge.api().get("/ws/stats", Some(&token)).await;
    assert_eq!(stats.body["active_connections"], 1);
    assert!(stats.body["clients"][0]["messages_sent"].as_u64().unwrap() >= 6);
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_resumes_with_no_gap() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let (token, _) = edge
        .api()
        .user("ws2@example.com", "correct horse battery")
        .await;
    let pool = db.pool(2);
    let publish = |from: i64, to: i64| {
        let pool = pool.clone();
        async move {
            let client = pool.get().await.unwrap();
            for i in from..to {
                publish_in(&client, &[NewEvent::new("tick", json!({"i": i}))])
                    .await
                    .unwrap();
            }
        }
    };
    let mut socket = ws::connect(&ws_url(&edge.base, &format!("?token={token}"))).await;
    ws::next_json(&mut socket, T).await; // connected
    publish(0, 10).await;
    let mut last_id = 0;
    for i in 0..5 {
        let e = ws::next_json(&mut socket, T).await;
        assert_eq!(e["data"]["i"], i);
        last_id = e["event_id"].as_i64().unwrap();
    }
    drop(socket); // the client goes away having seen 0..5
    publish(10, 20).await;
    let mut socket = ws::connect(&ws_url(
        &edge.base,
        &format!("?token={token}&last_event_id={last_id}"),
    ))
    .await;
    ws::next_json(&mut socket, T).await; // connected
    publish(20, 25).await;
    for i in 5..25 {
        let e = ws::next_json(&mut socket, T).await;
        assert_eq!(e["data"]["i"], i, "in order, nothing lost, nothing twice");
    }
    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn a_client_that_cannot_keep_up_gets_a_lagged_notice_not_unbounded_memory() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    // A small buffer: on a loaded machine the hub reads many events per batch, so the client
    // must fall behind by only a few batches to be lagged.
    let edge = start_edge(&db, &auth, &[("WS_BUFFER_BATCHES", "2")]).await;
    let (token, _) = edge
        .api()
        .user("slow@example.com", "correct horse battery")
        .await;
    let mut socket = ws::connect(&ws_url(&edge.base, &format!("?token={token}"))).await;
    ws::next_json(&mut socket, T).await; // connected; then the client stops reading
    // A second client that keeps up: waiting until it has seen each group makes every group
    // reach the hub as batches of its own, however loaded the machine (no timing guesses).
    let mut watcher = ws::connect(&ws_url(&edge.base, &format!("?token={token}"))).await;
    ws::next_json(&mut watcher, T).await; // connected
    let pool = db.pool(2);
    let client = pool.get().await.unwrap();
    let big = "x".repeat(64 * 1024);
    // Many separate batches, so the client falls more than 2 batches behind.
    for group in 0..60 {
        for j in 0..5 {
            let i = group * 5 + j;
            publish_in(
                &client,
                &[NewEvent::new("bulk", json!({"i": i, "pad": big}))],
            )
            .await
            .unwrap();
        }
        let last = group * 5 + 4;
        // The watcher shares the small buffer: if it falls behind too, its `lagged` notice
        // equally says the hub has handled the group.
        loop {
            let m = ws::next_json(&mut watcher, Duration::from_secs(30)).await;
            if m["type"] == "lagged" || m["data"]["i"].as_i64().is_some_and(|i| i >= last) {
                break;
            }
        }
    }
    drop(watcher);
    // Reading again: a `lagged` notice arrives, naming the last event delivered.
    let mut lagged = None;
    for n in 0..400 {
        let m = match ws::next(&mut socket, Duration::from_secs(30)).await {
            ws::Next::Json(m) => m,
            ws::Next::Closed(f) => panic!("closed after {n}: {f:?}"),
        };
        if m["type"] == "lagged" {
            lagged = Some(m);
            break;
        }
    }
    let lagged = lagged.expect("a lagged notice");
    assert!(lagged["data"]["missed_batches"].as_u64().unwrap() > 0);
    assert!(lagged["data"].get("last_event_id").is_some());
    // The connection still works afterwards.
    ws::send_json(&mut socket, &json!({"action": "ping"})).await;
    let mut ponged = false;
    for _ in 0..400 {
        if ws::next_json(&mut socket, Duration::from_secs(30)).await["type"] == "pong" {
            ponged = true;
            break;
        }
    }
    assert!(ponged);
    drop(socket);
    edge.stop().await;
    auth.stop().await;
}
