//! The `notifications` skill: a generic JSON webhook, Slack, Discord and Microsoft Teams
//! incoming webhooks (each in its own body shape), and a batch of them. Every webhook goes
//! through the guarded client, like any outbound request. The Slack/Discord/Teams URL
//! defaults to `SLACK_WEBHOOK_URL` / `DISCORD_WEBHOOK_URL` / `TEAMS_WEBHOOK_URL`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{headers, parse_url};
use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::net::OutboundRequest;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};
use crate::validate::{Schema, summary};

const SKILL: &str = "notifications";
const MAX_BATCH: usize = 50;

fn url_prop() -> Value {
    json!({"type": "string", "minLength": 8, "maxLength": 4096, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
}

fn webhook_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "url": url_prop(),
            "payload": {},
            "method": {"type": "string", "enum": ["POST", "PUT"]},
            "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8192}, "maxProperties": 50},
        },
        "required": ["url", "payload"],
        "additionalProperties": false,
    })
}

fn slack_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "webhook_url": url_prop(),
            "text": {"type": "string", "minLength": 1, "maxLength": 40000},
            "channel": {"type": "string", "maxLength": 200},
            "username": {"type": "string", "maxLength": 200},
            "icon_emoji": {"type": "string", "maxLength": 100},
            "icon_url": url_prop(),
            "blocks": {"type": "array", "maxItems": 50},
            "attachments": {"type": "array", "maxItems": 20},
        },
        "required": ["text"],
        "additionalProperties": false,
    })
}

fn discord_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "webhook_url": url_prop(),
            "content": {"type": "string", "minLength": 1, "maxLength": 2000},
            "username": {"type": "string", "maxLength": 80},
            "avatar_url": url_prop(),
            "tts": {"type": "boolean"},
            "embeds": {"type": "array", "maxItems": 10, "items": {"type": "object"}},
        },
        "anyOf": [{"required": ["content"]}, {"required": ["embeds"]}],
        "additionalProperties": false,
    })
}

fn teams_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "webhook_url": url_prop(),
            "title": {"type": "string", "maxLength": 500},
            "text": {"type": "string", "minLength": 1, "maxLength": 20000},
            "theme_color": {"type": "string", "pattern": "^#?[0-9A-Fa-f]{6}$"},
            "facts": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 50},
            "link": {"type": "object", "properties": {"title": {"type": "string"}, "url": url_prop()}, "required": ["title", "url"]},
        },
        "required": ["text"],
        "additionalProperties": false,
    })
}

const OUTPUT: &str = "{service, status, ok, response}";

/// Compiled schemas of the batchable tools, to validate each item of a batch.
struct Batchable {
    svc: Arc<Services>,
    schemas: BTreeMap<&'static str, Schema>,
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    let def = |name: &str, desc: &str, schema: Value| {
        ToolDefinition::new(name, SKILL, Category::Communication, desc)
            .permissions(&[Permission::Network])
            .timeout(Duration::from_secs(60))
            .schema(schema)
            .output(OUTPUT)
    };
    reg.register(
        def(
            "notify_webhook",
            "POST a JSON payload to a webhook",
            webhook_schema(),
        ),
        with(svc.clone(), |s, _c, i| async move {
            webhook(&s, parse(i)?).await
        }),
    )?;
    reg.register(
        def(
            "notify_slack",
            "Send a message to a Slack incoming webhook",
            slack_schema(),
        ),
        with(
            svc.clone(),
            |s, _c, i| async move { slack(&s, parse(i)?).await },
        ),
    )?;
    reg.register(
        def(
            "notify_discord",
            "Send a message to a Discord webhook",
            discord_schema(),
        ),
        with(svc.clone(), |s, _c, i| async move {
            discord(&s, parse(i)?).await
        }),
    )?;
    reg.register(
        def(
            "notify_teams",
            "Send a card to a Microsoft Teams incoming webhook",
            teams_schema(),
        ),
        with(
            svc.clone(),
            |s, _c, i| async move { teams(&s, parse(i)?).await },
        ),
    )?;

    let compile = |v: Value| {
        Schema::compile(&v).map_err(|reason| ToolError::InvalidSchema {
            tool: "notify_batch".into(),
            reason,
        })
    };
    let batchable = Arc::new(Batchable {
        svc: svc.clone(),
        schemas: BTreeMap::from([
            ("notify_webhook", compile(webhook_schema())?),
            ("notify_slack", compile(slack_schema())?),
            ("notify_discord", compile(discord_schema())?),
            ("notify_teams", compile(teams_schema())?),
        ]),
    });
    reg.register(
        def(
            "notify_batch",
            "Send several notifications (webhook, Slack, Discord, Teams) in one call",
            json!({
                "type": "object",
                "properties": {
                    "notifications": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_BATCH,
                        "items": {
                            "type": "object",
                            "properties": {
                                "tool": {"type": "string", "enum": ["notify_webhook", "notify_slack", "notify_discord", "notify_teams"]},
                                "input": {"type": "object"},
                            },
                            "required": ["tool", "input"],
                            "additionalProperties": false,
                        },
                    },
                    "stop_on_error": {"type": "boolean"},
                },
                "required": ["notifications"],
                "additionalProperties": false,
            }),
        )
        .timeout(Duration::from_secs(300))
        .output("{results[{tool, success, message, data}], sent, failed}"),
        with(batchable, batch),
    )?;
    Ok(())
}

fn default_url(
    given: Option<String>,
    fallback: Option<&gathering_core::Secret>,
    var: &str,
) -> Result<String, ToolError> {
    given
        .or_else(|| fallback.map(|s| s.expose().to_owned()))
        .ok_or_else(|| {
            ToolError::InvalidInput(format!("no webhook_url given and {var} is not set"))
        })
}

async fn post(
    svc: &Services,
    service: &str,
    method: Method,
    url: &str,
    body: &Value,
    extra: &BTreeMap<String, String>,
) -> Result<ToolOutput, ToolError> {
    let mut req = OutboundRequest::new(method, parse_url(url)?);
    req.headers = headers(extra)?;
    req = req.json(body);
    // A webhook that redirects is misconfigured; not following keeps the body where it was sent.
    req.follow_redirects = false;
    req.max_bytes = Some(64 * 1024);
    let resp = svc.http.send(req).await?;
    let text: String = resp.text().chars().take(2000).collect();
    let data = json!({"service": service, "status": resp.status, "ok": resp.is_success(), "response": text});
    Ok(if resp.is_success() {
        ToolOutput::ok(
            format!("{service} notification sent ({})", resp.status),
            data,
        )
    } else {
        ToolOutput::failed(format!("{service} answered {}", resp.status), data)
    })
}

#[derive(Deserialize)]
struct WebhookInput {
    url: String,
    payload: Value,
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

async fn webhook(svc: &Services, i: WebhookInput) -> Result<ToolOutput, ToolError> {
    let method = if i.method.as_deref() == Some("PUT") {
        Method::PUT
    } else {
        Method::POST
    };
    post(svc, "webhook", method, &i.url, &i.payload, &i.headers).await
}

#[derive(Deserialize)]
struct SlackInput {
    webhook_url: Option<String>,
    text: String,
    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
    icon_url: Option<String>,
    blocks: Option<Vec<Value>>,
    attachments: Option<Vec<Value>>,
}

/// Slack's incoming-webhook body.
pub fn slack_body(
    text: &str,
    channel: Option<&str>,
    username: Option<&str>,
    icon_emoji: Option<&str>,
    icon_url: Option<&str>,
    blocks: Option<&[Value]>,
    attachments: Option<&[Value]>,
) -> Value {
    let mut body = Map::new();
    body.insert("text".into(), json!(text));
    let mut opt = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    opt("channel", channel.map(|s| json!(s)));
    opt("username", username.map(|s| json!(s)));
    opt("icon_emoji", icon_emoji.map(|s| json!(s)));
    opt("icon_url", icon_url.map(|s| json!(s)));
    opt("blocks", blocks.map(|b| json!(b)));
    opt("attachments", attachments.map(|a| json!(a)));
    Value::Object(body)
}

async fn slack(svc: &Services, i: SlackInput) -> Result<ToolOutput, ToolError> {
    let url = default_url(
        i.webhook_url,
        svc.config.webhooks.slack.as_ref(),
        "SLACK_WEBHOOK_URL",
    )?;
    let body = slack_body(
        &i.text,
        i.channel.as_deref(),
        i.username.as_deref(),
        i.icon_emoji.as_deref(),
        i.icon_url.as_deref(),
        i.blocks.as_deref(),
        i.attachments.as_deref(),
    );
    post(svc, "slack", Method::POST, &url, &body, &BTreeMap::new()).await
}

#[derive(Deserialize)]
struct DiscordInput {
    webhook_url: Option<String>,
    content: Option<String>,
    username: Option<String>,
    avatar_url: Option<String>,
    tts: Option<bool>,
    embeds: Option<Vec<Value>>,
}

async fn discord(svc: &Services, i: DiscordInput) -> Result<ToolOutput, ToolError> {
    let url = default_url(
        i.webhook_url,
        svc.config.webhooks.discord.as_ref(),
        "DISCORD_WEBHOOK_URL",
    )?;
    let mut body = Map::new();
    if let Some(c) = i.content {
        body.insert("content".into(), json!(c));
    }
    if let Some(u) = i.username {
        body.insert("username".into(), json!(u));
    }
    if let Some(a) = i.avatar_url {
        body.insert("avatar_url".into(), json!(a));
    }
    if let Some(t) = i.tts {
        body.insert("tts".into(), json!(t));
    }
    if let Some(e) = i.embeds {
        body.insert("embeds".into(), json!(e));
    }
    post(
        svc,
        "discord",
        Method::POST,
        &url,
        &Value::Object(body),
        &BTreeMap::new(),
    )
    .await
}

#[derive(Deserialize)]
struct TeamsLink {
    title: String,
    url: String,
}

#[derive(Deserialize)]
struct TeamsInput {
    webhook_url: Option<String>,
    title: Option<String>,
    text: String,
    theme_color: Option<String>,
    #[serde(default)]
    facts: BTreeMap<String, String>,
    link: Option<TeamsLink>,
}

async fn teams(svc: &Services, i: TeamsInput) -> Result<ToolOutput, ToolError> {
    let url = default_url(
        i.webhook_url,
        svc.config.webhooks.teams.as_ref(),
        "TEAMS_WEBHOOK_URL",
    )?;
    // The Office 365 connector card ("MessageCard") that Teams incoming webhooks accept.
    let summary: String = i
        .title
        .clone()
        .unwrap_or_else(|| i.text.chars().take(80).collect());
    let mut card = json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": summary,
        "themeColor": i.theme_color.as_deref().unwrap_or("0076D7").trim_start_matches('#'),
        "text": i.text,
    });
    if let Some(t) = &i.title {
        card["title"] = json!(t);
    }
    if !i.facts.is_empty() {
        let facts: Vec<Value> = i
            .facts
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        card["sections"] = json!([{"facts": facts}]);
    }
    if let Some(l) = &i.link {
        card["potentialAction"] = json!([{"@type": "OpenUri", "name": l.title, "targets": [{"os": "default", "uri": l.url}]}]);
    }
    post(svc, "teams", Method::POST, &url, &card, &BTreeMap::new()).await
}

#[derive(Deserialize)]
struct BatchItem {
    tool: String,
    input: Value,
}

#[derive(Deserialize)]
struct BatchInput {
    notifications: Vec<BatchItem>,
    stop_on_error: Option<bool>,
}

async fn batch(
    b: Arc<Batchable>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: BatchInput = parse(input)?;
    let stop = i.stop_on_error.unwrap_or(false);
    let mut results = Vec::new();
    let (mut sent, mut failed) = (0, 0);
    for (n, item) in i.notifications.into_iter().enumerate() {
        let outcome = match b.schemas.get(item.tool.as_str()) {
            None => Err(ToolError::InvalidInput(format!(
                "'{}' cannot be batched",
                item.tool
            ))),
            Some(schema) => {
                let v = schema.violations(&item.input);
                if !v.is_empty() {
                    Err(ToolError::InvalidInput(format!(
                        "notifications[{n}]: {}",
                        summary(&v)
                    )))
                } else {
                    let svc = &b.svc;
                    match item.tool.as_str() {
                        "notify_webhook" => webhook(svc, parse(item.input)?).await,
                        "notify_slack" => slack(svc, parse(item.input)?).await,
                        "notify_discord" => discord(svc, parse(item.input)?).await,
                        _ => teams(svc, parse(item.input)?).await,
                    }
                }
            }
        };
        let ok = matches!(&outcome, Ok(o) if o.success);
        if ok {
            sent += 1;
        } else {
            failed += 1;
        }
        results.push(match outcome {
            Ok(o) => json!({"tool": item.tool, "success": o.success, "message": o.message, "data": o.data}),
            Err(e) => json!({"tool": item.tool, "success": false, "message": e.to_string(), "error": e.code()}),
        });
        if stop && !ok {
            break;
        }
    }
    let data = json!({"results": results, "sent": sent, "failed": failed});
    let msg = format!("{sent} sent, {failed} failed");
    Ok(if failed == 0 {
        ToolOutput::ok(msg, data)
    } else {
        ToolOutput::failed(msg, data)
    })
}
