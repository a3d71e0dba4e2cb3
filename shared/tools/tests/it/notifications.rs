//! Webhook notifications reach a real receiver on 127.0.0.1 (allow-listed in code, not via
//! the environment) with each service's body shape.

use gathering_core::Secret;
use gathering_tools::Toolbox;
use serde_json::json;

use crate::helpers::{Receiver, config, ctx, toolbox};

#[tokio::test]
async fn generic_webhook_posts_the_payload() {
    let rx = Receiver::start().await;
    let tb = toolbox("127.0.0.1");
    let payload = json!({"event": "build.finished", "ok": true, "n": [1, 2]});
    let r = tb
        .execute(
            "notify_webhook",
            json!({"url": rx.url("/hook"), "payload": payload, "headers": {"X-Token": "abc"}}),
            &ctx(None),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["status"], 200);
    let seen = rx.wait_for(1).await;
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(seen[0].json(), payload);
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(seen[0].headers["x-token"], "abc");
    let r = tb
        .execute(
            "notify_webhook",
            json!({"url": rx.url("/x"), "payload": {}, "method": "PUT"}),
            &ctx(None),
        )
        .await;
    assert!(r.success);
    assert_eq!(rx.wait_for(2).await[1].method, "PUT");
}

#[tokio::test]
async fn slack_discord_and_teams_bodies() {
    let rx = Receiver::start().await;
    let tb = toolbox("127.0.0.1");
    let r = tb
        .execute("notify_slack", json!({"webhook_url": rx.url("/slack"), "text": "Deploy done", "channel": "#ops", "username": "bot", "icon_emoji": ":rocket:"}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    let r = tb
        .execute("notify_discord", json!({"webhook_url": rx.url("/discord"), "content": "Hello", "username": "bot", "embeds": [{"title": "T", "description": "D"}]}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    let r = tb
        .execute("notify_teams", json!({"webhook_url": rx.url("/teams"), "title": "Build", "text": "All green", "theme_color": "#00FF00", "facts": {"branch": "main"}, "link": {"title": "Open", "url": "https://ci.example/1"}}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    let seen = rx.wait_for(3).await;
    assert_eq!(
        seen[0].json(),
        json!({"text": "Deploy done", "channel": "#ops", "username": "bot", "icon_emoji": ":rocket:"})
    );
    assert_eq!(
        seen[1].json(),
        json!({"content": "Hello", "username": "bot", "embeds": [{"title": "T", "description": "D"}]})
    );
    assert_eq!(
        seen[2].json(),
        json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": "Build",
            "themeColor": "00FF00",
            "title": "Build",
            "text": "All green",
            "sections": [{"facts": [{"name": "branch", "value": "main"}]}],
            "potentialAction": [{"@type": "OpenUri", "name": "Open", "targets": [{"os": "default", "uri": "https://ci.example/1"}]}],
        })
    );
}

#[tokio::test]
async fn default_webhook_urls_come_from_the_config() {
    let rx = Receiver::start().await;
    let mut cfg = config("127.0.0.1");
    cfg.webhooks.slack = Some(Secret::new(rx.url("/default-slack")));
    let tb = Toolbox::new(None, cfg).unwrap();
    let r = tb
        .execute("notify_slack", json!({"text": "hi"}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(rx.wait_for(1).await[0].path, "/default-slack");
    let r = tb
        .execute("notify_discord", json!({"content": "hi"}), &ctx(None))
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    assert!(r.message.contains("DISCORD_WEBHOOK_URL"));
}

#[tokio::test]
async fn batch_sends_each_and_reports_each() {
    let rx = Receiver::start().await;
    let tb = toolbox("127.0.0.1");
    let r = tb
        .execute(
            "notify_batch",
            json!({"notifications": [
                {"tool": "notify_slack", "input": {"webhook_url": rx.url("/s"), "text": "one"}},
                {"tool": "notify_discord", "input": {"webhook_url": rx.url("/d")}},
                {"tool": "notify_webhook", "input": {"url": rx.url("/status/500"), "payload": {"a": 1}}},
                {"tool": "notify_teams", "input": {"webhook_url": rx.url("/t"), "text": "three"}},
            ]}),
            &ctx(None),
        )
        .await;
    assert!(!r.success, "one failed: {r:?}");
    assert_eq!(
        (r.data["sent"].as_u64(), r.data["failed"].as_u64()),
        (Some(2), Some(2))
    );
    let results = r.data["results"].as_array().unwrap();
    assert_eq!(
        results[1]["error"], "invalid_input",
        "the Discord input had neither content nor embeds"
    );
    assert!(
        results[1]["message"]
            .as_str()
            .unwrap()
            .contains("notifications[1]")
    );
    assert_eq!(results[2]["data"]["status"], 500);
    let paths: Vec<String> = rx
        .wait_for(3)
        .await
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(paths, ["/s", "/status/500", "/t"]);
    assert_eq!(rx.seen()[2].json()["text"], "three");

    let r = tb
        .execute(
            "notify_batch",
            json!({"stop_on_error": true, "notifications": [
                {"tool": "notify_webhook", "input": {"url": rx.url("/status/503"), "payload": {}}},
                {"tool": "notify_webhook", "input": {"url": rx.url("/never"), "payload": {}}},
            ]}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.data["results"].as_array().unwrap().len(), 1);
    assert!(rx.seen().iter().all(|s| s.path != "/never"));
}

#[tokio::test]
async fn webhooks_obey_the_ssrf_guard() {
    let rx = Receiver::start().await;
    let tb = toolbox("");
    for (tool, input) in [
        (
            "notify_webhook",
            json!({"url": rx.url("/hook"), "payload": {}}),
        ),
        (
            "notify_slack",
            json!({"webhook_url": rx.url("/s"), "text": "x"}),
        ),
        (
            "notify_discord",
            json!({"webhook_url": "http://169.254.169.254/x", "content": "x"}),
        ),
        (
            "notify_teams",
            json!({"webhook_url": "http://10.1.2.3/x", "text": "x"}),
        ),
    ] {
        let r = tb.execute(tool, input, &ctx(None)).await;
        assert_eq!(r.error.as_deref(), Some("refused"), "{tool}: {r:?}");
    }
    assert!(rx.seen().is_empty());
}
