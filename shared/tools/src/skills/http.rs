//! The `http` skill: get, post, put, delete, generic requests, API calls with auth, JSON
//! parsing and URL building. Every request goes through the guarded client (SSRF guard after
//! DNS resolution, each redirect checked, size and time limits).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::net::{GuardedClient, OutboundRequest, OutboundResponse};
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "http";

/// Headers callers may not set: they would confuse framing or the target.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
];

fn url_schema() -> Value {
    json!({"type": "string", "minLength": 8, "maxLength": 8192, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
}

fn common_props() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("url".into(), url_schema());
    m.insert("headers".into(), json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": 8192}, "maxProperties": 50}));
    m.insert("params".into(), json!({"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}, "maxProperties": 100}));
    m.insert(
        "timeout_seconds".into(),
        json!({"type": "integer", "minimum": 1, "maximum": 120}),
    );
    m.insert("max_bytes".into(), json!({"type": "integer", "minimum": 1}));
    m.insert("follow_redirects".into(), json!({"type": "boolean"}));
    m
}

fn schema(with_body: bool, extra: &[(&str, Value)], required: &[&str]) -> Value {
    let mut props = common_props();
    if with_body {
        props.insert("json".into(), json!({}));
        props.insert(
            "body".into(),
            json!({"type": "string", "maxLength": 1048576}),
        );
    }
    for (k, v) in extra {
        props.insert((*k).to_owned(), v.clone());
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

const OUTPUT: &str = "{status, ok, url, headers, body (JSON when the response is JSON, else text), truncated, redirects, elapsed_ms}";

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    let def = |name: &str, desc: &str| {
        ToolDefinition::new(name, SKILL, Category::Api, desc)
            .permissions(&[Permission::Network])
            .timeout(Duration::from_secs(130))
            .output(OUTPUT)
    };
    for (name, method, body, desc) in [
        ("http_get", Method::GET, false, "HTTP GET"),
        (
            "http_post",
            Method::POST,
            true,
            "HTTP POST (JSON or text body)",
        ),
        (
            "http_put",
            Method::PUT,
            true,
            "HTTP PUT (JSON or text body)",
        ),
        ("http_delete", Method::DELETE, false, "HTTP DELETE"),
    ] {
        reg.register(
            def(name, desc).schema(schema(body, &[], &["url"])),
            with(svc.clone(), move |svc, _ctx, input| {
                let method = method.clone();
                async move { request(&svc.http, method, parse(input)?).await }
            }),
        )?;
    }
    reg.register(
        def("http_request", "HTTP request with any method").schema(schema(
            true,
            &[("method", json!({"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]}))],
            &["url", "method"],
        )),
        with(svc.clone(), |svc, _ctx, input| async move {
            let i: RequestInput = parse(input)?;
            let method = Method::from_bytes(i.method.clone().unwrap_or_default().as_bytes())
                .map_err(|_| ToolError::InvalidInput("invalid method".into()))?;
            request(&svc.http, method, i).await
        }),
    )?;
    reg.register(
        def("api_call", "Call a REST API: base URL + endpoint, method, query, JSON body and authentication")
            .schema(json!({
                "type": "object",
                "properties": {
                    "base_url": url_schema(),
                    "endpoint": {"type": "string", "maxLength": 4096},
                    "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                    "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                    "json": {},
                    "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8192}},
                    "auth": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "enum": ["bearer", "basic", "api_key"]},
                            "token": {"type": "string", "maxLength": 8192},
                            "username": {"type": "string", "maxLength": 1024},
                            "password": {"type": "string", "maxLength": 1024},
                            "header": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9-]+$"},
                        },
                        "required": ["type"],
                        "additionalProperties": false,
                    },
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 120},
                },
                "required": ["base_url"],
                "additionalProperties": false,
            })),
        with(svc.clone(), api_call),
    )?;
    reg.register(
        ToolDefinition::new(
            "parse_json",
            SKILL,
            Category::Api,
            "Parse JSON text, optionally extracting a path like a.b[0].c",
        )
        .schema(json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "maxLength": 10485760},
                "path": {"type": "string", "maxLength": 1000},
            },
            "required": ["text"],
            "additionalProperties": false,
        }))
        .output("{value, type}"),
        parse_json,
    )?;
    reg.register(
        ToolDefinition::new("build_url", SKILL, Category::Api, "Build a URL from a base, path segments and query parameters")
            .schema(json!({
                "type": "object",
                "properties": {
                    "base": url_schema(),
                    "path": {"type": "string", "maxLength": 4096},
                    "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                },
                "required": ["base"],
                "additionalProperties": false,
            }))
            .output("{url}"),
        build_url,
    )?;
    Ok(())
}

#[derive(Deserialize, Default)]
struct RequestInput {
    url: String,
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    params: Map<String, Value>,
    json: Option<Value>,
    body: Option<String>,
    timeout_seconds: Option<u64>,
    max_bytes: Option<usize>,
    follow_redirects: Option<bool>,
}

pub(crate) fn parse_url(raw: &str) -> Result<Url, ToolError> {
    Url::parse(raw).map_err(|e| ToolError::InvalidInput(format!("invalid URL '{raw}': {e}")))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn headers(map: &BTreeMap<String, String>) -> Result<HeaderMap, ToolError> {
    let mut out = HeaderMap::new();
    for (k, v) in map {
        if FORBIDDEN_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(ToolError::InvalidInput(format!(
                "header '{k}' cannot be set"
            )));
        }
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ToolError::InvalidInput(format!("invalid header name '{k}'")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| ToolError::InvalidInput(format!("invalid value for header '{k}'")))?;
        out.insert(name, value);
    }
    Ok(out)
}

async fn request(
    client: &GuardedClient,
    method: Method,
    i: RequestInput,
) -> Result<ToolOutput, ToolError> {
    let mut url = parse_url(&i.url)?;
    if !i.params.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in &i.params {
            q.append_pair(k, &scalar(v));
        }
    }
    let mut req = OutboundRequest::new(method, url);
    req.headers = headers(&i.headers)?;
    if let Some(j) = &i.json {
        let content_type = req.headers.get(reqwest::header::CONTENT_TYPE).cloned();
        req = req.json(j);
        if let Some(ct) = content_type {
            req.headers.insert(reqwest::header::CONTENT_TYPE, ct);
        }
    } else if let Some(b) = i.body {
        req.body = Some(b.into_bytes());
    }
    req.timeout = i.timeout_seconds.map(Duration::from_secs);
    req.max_bytes = i.max_bytes;
    req.follow_redirects = i.follow_redirects.unwrap_or(true);
    send(client, req).await
}

/// Sends and describes the response; a non-2xx answer is a failed (not erroneous) call.
pub(crate) async fn send(
    client: &GuardedClient,
    req: OutboundRequest,
) -> Result<ToolOutput, ToolError> {
    let method = req.method.clone();
    let started = Instant::now();
    let resp = client.send(req).await?;
    let data = describe(&resp, started.elapsed());
    let msg = format!("{method} {} → {}", resp.url, resp.status);
    Ok(if resp.is_success() {
        ToolOutput::ok(msg, data)
    } else {
        ToolOutput::failed(msg, data)
    })
}

pub(crate) fn describe(resp: &OutboundResponse, elapsed: Duration) -> Value {
    let is_json = resp.content_type().is_some_and(|c| c.contains("json"));
    let body = if is_json && !resp.truncated {
        serde_json::from_slice(&resp.body).unwrap_or_else(|_| Value::String(resp.text()))
    } else {
        Value::String(resp.text())
    };
    let headers: Map<String, Value> = resp
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "status": resp.status,
        "ok": resp.is_success(),
        "url": resp.url.as_str(),
        "headers": headers,
        "body": body,
        "truncated": resp.truncated,
        "redirects": resp.redirects,
        "elapsed_ms": elapsed.as_millis() as u64,
    })
}

#[derive(Deserialize)]
struct Auth {
    #[serde(rename = "type")]
    kind: String,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    header: Option<String>,
}

#[derive(Deserialize)]
struct ApiCallInput {
    base_url: String,
    endpoint: Option<String>,
    method: Option<String>,
    #[serde(default)]
    params: Map<String, Value>,
    json: Option<Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    auth: Option<Auth>,
    timeout_seconds: Option<u64>,
}

async fn api_call(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ApiCallInput = parse(input)?;
    let url = join_url(&i.base_url, i.endpoint.as_deref().unwrap_or(""))?;
    let mut headers = i.headers;
    headers
        .entry("Accept".into())
        .or_insert_with(|| "application/json".into());
    if let Some(auth) = &i.auth {
        let token = || {
            auth.token.clone().ok_or_else(|| {
                ToolError::InvalidInput(format!("auth type '{}' needs a token", auth.kind))
            })
        };
        match auth.kind.as_str() {
            "bearer" => {
                headers.insert("Authorization".into(), format!("Bearer {}", token()?));
            }
            "basic" => {
                use base64::Engine;
                let user = auth.username.clone().unwrap_or_default();
                let pass = auth.password.clone().unwrap_or_default();
                headers.insert(
                    "Authorization".into(),
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                    ),
                );
            }
            _ => {
                headers.insert(
                    auth.header.clone().unwrap_or_else(|| "X-API-Key".into()),
                    token()?,
                );
            }
        }
    }
    let method = i.method.unwrap_or_else(|| "GET".into());
    let req = RequestInput {
        url: url.to_string(),
        headers,
        params: i.params,
        json: i.json,
        timeout_seconds: i.timeout_seconds,
        ..RequestInput::default()
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| ToolError::InvalidInput("invalid method".into()))?;
    request(&svc.http, method, req).await
}

/// `base` + `path`: the path is appended to the base's path (not resolved against it, so
/// `https://api/v1` + `users` is `https://api/v1/users`).
fn join_url(base: &str, path: &str) -> Result<Url, ToolError> {
    let mut url = parse_url(base)?;
    if path.starts_with("//") || path.contains("://") {
        return Err(ToolError::InvalidInput(
            "the endpoint must be a path, not a URL".into(),
        ));
    }
    let path = path.trim_start_matches('/');
    if !path.is_empty() {
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path);
        let (p, q) = joined.split_once('?').unwrap_or((&joined, ""));
        url.set_path(p);
        if !q.is_empty() {
            url.set_query(Some(q));
        }
    }
    Ok(url)
}

#[derive(Deserialize)]
struct ParseJsonInput {
    text: String,
    path: Option<String>,
}

async fn parse_json(_ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ParseJsonInput = parse(input)?;
    let value: Value = serde_json::from_str(&i.text)
        .map_err(|e| ToolError::InvalidInput(format!("invalid JSON: {e}")))?;
    let value = match &i.path {
        Some(p) if !p.is_empty() => select(&value, p)?.clone(),
        _ => value,
    };
    let kind = match &value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    Ok(ToolOutput::ok(
        format!("Parsed JSON ({kind})"),
        json!({"value": value, "type": kind}),
    ))
}

/// `a.b[0].c` inside `v`.
pub fn select<'a>(v: &'a Value, path: &str) -> Result<&'a Value, ToolError> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur
                .get(key)
                .ok_or_else(|| ToolError::Missing(format!("no key '{key}' at '{path}'")))?;
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx
                .trim_end_matches(']')
                .parse()
                .map_err(|_| ToolError::InvalidInput(format!("invalid index in '{path}'")))?;
            cur = cur
                .get(n)
                .ok_or_else(|| ToolError::Missing(format!("no index {n} at '{path}'")))?;
        }
    }
    Ok(cur)
}

#[derive(Deserialize)]
struct BuildUrlInput {
    base: String,
    path: Option<String>,
    #[serde(default)]
    params: Map<String, Value>,
}

async fn build_url(_ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: BuildUrlInput = parse(input)?;
    let mut url = join_url(&i.base, i.path.as_deref().unwrap_or(""))?;
    if !i.params.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in &i.params {
            q.append_pair(k, &scalar(v));
        }
    }
    Ok(ToolOutput::ok(
        url.to_string(),
        json!({"url": url.as_str()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_selects() {
        assert_eq!(
            join_url("https://api.example.com/v1", "/users")
                .unwrap()
                .as_str(),
            "https://api.example.com/v1/users"
        );
        assert!(join_url("https://a.example", "//evil.example/x").is_err());
        let v = json!({"a": {"b": [1, {"c": 3}]}});
        assert_eq!(select(&v, "a.b[1].c").unwrap(), &json!(3));
        assert!(select(&v, "a.x").is_err());
    }
}
