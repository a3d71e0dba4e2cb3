//! The `cloud` skill: objects of an S3-compatible store (AWS S3, MinIO, Ceph, …) — list, get,
//! put, delete — in the buckets the operator allows ([`settings`]).
//!
//! Requests are signed with `rusty-s3` (SigV4 presigned URLs, valid 5 minutes) and sent by our
//! guarded HTTP client, so the endpoint passes the outbound guard on every connection and no
//! redirect is followed. Limits: object size on get and put (`GATHERING_CLOUD_MAX_OBJECT_BYTES`),
//! keys per list ([`MAX_LIST`]). Deleting asks for confirmation.

pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::Deserialize;
use serde_json::{Value, json};

use self::settings::{CloudSettings, MAX_LIST};
use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::net::{GuardedClient, HttpLimits, NetGuard, OutboundRequest, OutboundResponse};
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;

const SKILL: &str = "cloud";
/// How long a signed request stays valid (it is sent at once; this only bounds clock skew).
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// The configured store and a guarded client sized for its objects.
struct Store {
    settings: CloudSettings,
    credentials: Option<Credentials>,
    http: GuardedClient,
}

struct Cloud {
    store: Option<Store>,
}

impl Cloud {
    fn store(&self) -> Result<&Store, ToolError> {
        self.store.as_ref().ok_or_else(|| {
            ToolError::InvalidInput(
                "no object store is configured for the cloud skill (the operator sets GATHERING_CLOUD_S3_ENDPOINT and GATHERING_CLOUD_S3_BUCKETS)".into(),
            )
        })
    }

    /// The store and the bucket of one object, its key checked (get, put, delete).
    fn object(&self, bucket: &str, key: &str) -> Result<(&Store, Bucket), ToolError> {
        let store = self.store()?;
        let bucket = store.bucket(bucket)?;
        Store::check_key(&bucket, key)?;
        Ok((store, bucket))
    }
}

impl Store {
    fn bucket(&self, name: &str) -> Result<Bucket, ToolError> {
        if !self.settings.buckets.iter().any(|b| b == name) {
            return Err(ToolError::Refused(format!(
                "bucket '{name}' is not one the cloud skill may use (allowed: {})",
                self.settings.buckets.join(", ")
            )));
        }
        let style = if self.settings.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        Bucket::new(
            self.settings.endpoint.clone(),
            style,
            name.to_owned(),
            self.settings.region.clone(),
        )
        .map_err(|e| ToolError::InvalidInput(format!("bucket '{name}': {e}")))
    }

    /// The URL of `key` in `bucket`, refused when it would leave the bucket: `rusty-s3` does
    /// not encode `.` or `%`, and URL parsing resolves `..` and `%2e%2e` segments, so with
    /// path-style URLs `../other-bucket/x` would name another bucket.
    fn check_key(bucket: &Bucket, key: &str) -> Result<(), ToolError> {
        let dot_segment = key.split('/').any(|seg| {
            let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
            decoded == "." || decoded == ".."
        });
        let base = bucket.base_url().path();
        if dot_segment || !bucket.object_url(key).path().starts_with(base) {
            return Err(ToolError::Refused(format!(
                "key '{key}' has '.' or '..' segments; keys stay inside their bucket"
            )));
        }
        Ok(())
    }

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<OutboundResponse, ToolError> {
        let mut req = OutboundRequest::new(method, url);
        req.follow_redirects = false;
        if let Some(ct) = content_type {
            let v = HeaderValue::from_str(ct).map_err(|_| {
                ToolError::InvalidInput("content_type is not a header value".into())
            })?;
            req.headers.insert(CONTENT_TYPE, v);
        }
        req.body = body;
        self.http.send(req).await
    }
}

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Api, description).timeout(Duration::from_secs(120))
}

fn bucket_schema() -> Value {
    json!({"type": "string", "minLength": 3, "maxLength": 63, "pattern": "^[a-z0-9][a-z0-9.-]+[a-z0-9]$"})
}

fn key_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 1024})
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    let store = match &svc.config.cloud {
        None => None,
        Some(settings) => {
            let limits = HttpLimits {
                max_request_bytes: settings.max_object_bytes,
                max_response_bytes: settings.max_object_bytes,
                ..svc.config.http.clone()
            };
            Some(Store {
                credentials: match (&settings.access_key_id, &settings.secret_access_key) {
                    (Some(id), Some(secret)) => {
                        Some(Credentials::new(id.clone(), secret.expose().to_owned()))
                    }
                    _ => None,
                },
                http: GuardedClient::new(NetGuard::new(settings.allowlist.clone()), limits)?,
                settings: settings.clone(),
            })
        }
    };
    let cloud = Arc::new(Cloud { store });
    reg.register(
        def("cloud_list", "List the objects of an allowed bucket of the operator-configured S3-compatible store (prefix, page size, continuation token)")
            .permissions(&[Permission::Network, Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "bucket": bucket_schema(),
                    "prefix": {"type": "string", "maxLength": 1024},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
                    "continuation_token": {"type": "string", "minLength": 1, "maxLength": 4096},
                },
                "required": ["bucket"],
                "additionalProperties": false,
            }))
            .output("{bucket, objects[{key, size, last_modified, etag}], truncated, next_continuation_token}"),
        with(cloud.clone(), cloud_list),
    )?;
    reg.register(
        def("cloud_get", "Read an object of an allowed bucket: its text (UTF-8) or base64 content, type and size; objects over the size limit are refused")
            .permissions(&[Permission::Network, Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {"bucket": bucket_schema(), "key": key_schema()},
                "required": ["bucket", "key"],
                "additionalProperties": false,
            }))
            .output("{bucket, key, size, content_type, etag, text | content_base64}"),
        with(cloud.clone(), cloud_get),
    )?;
    reg.register(
        def("cloud_put", "Write an object (text or base64 content) to an allowed bucket, replacing any object with that key")
            .permissions(&[Permission::Network, Permission::Write])
            .schema(json!({
                "type": "object",
                "properties": {
                    "bucket": bucket_schema(),
                    "key": key_schema(),
                    "text": {"type": "string"},
                    "content_base64": {"type": "string"},
                    "content_type": {"type": "string", "minLength": 3, "maxLength": 255},
                },
                "required": ["bucket", "key"],
                "oneOf": [{"required": ["text"]}, {"required": ["content_base64"]}],
                "additionalProperties": false,
            }))
            .output("{bucket, key, size, etag}"),
        with(cloud.clone(), cloud_put),
    )?;
    reg.register(
        def("cloud_delete", "Delete an object of an allowed bucket")
            .permissions(&[Permission::Network, Permission::Delete])
            .dangerous(ConfirmationType::Destructive)
            .schema(json!({
                "type": "object",
                "properties": {"bucket": bucket_schema(), "key": key_schema()},
                "required": ["bucket", "key"],
                "additionalProperties": false,
            }))
            .output("{bucket, key, deleted}"),
        with(cloud, cloud_delete),
    )?;
    Ok(())
}

/// An S3 error answer as a tool error: its status, `Code` and `Message`.
fn s3_error(resp: &OutboundResponse, what: &str) -> ToolError {
    let text = resp.text();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_owned())
    };
    let detail = match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => format!("HTTP {}", resp.status),
    };
    if resp.status == 404 {
        ToolError::Missing(format!("{what}: {detail}"))
    } else {
        ToolError::Failed(format!("{what} failed (HTTP {}): {detail}", resp.status))
    }
}

#[derive(Deserialize)]
struct ListInput {
    bucket: String,
    prefix: Option<String>,
    limit: Option<u32>,
    continuation_token: Option<String>,
}

async fn cloud_list(
    cloud: Arc<Cloud>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ListInput = parse(input)?;
    let store = cloud.store()?;
    let bucket = store.bucket(&i.bucket)?;
    let mut action = ListObjectsV2::new(&bucket, store.credentials.as_ref());
    if let Some(p) = i.prefix.as_deref().filter(|p| !p.is_empty()) {
        action.with_prefix(p);
    }
    action.with_max_keys(i.limit.unwrap_or(100).clamp(1, MAX_LIST) as usize);
    if let Some(t) = &i.continuation_token {
        action.with_continuation_token(t.as_str());
    }
    let resp = store
        .send(Method::GET, action.sign(SIGNED_FOR), None, None)
        .await?;
    if !resp.is_success() {
        return Err(s3_error(&resp, &format!("listing bucket '{}'", i.bucket)));
    }
    if resp.truncated {
        return Err(ToolError::TooLarge(
            "the list answer is larger than the object size limit; use a smaller limit".into(),
        ));
    }
    let parsed = ListObjectsV2::parse_response(&resp.text())
        .map_err(|e| ToolError::Failed(format!("the store's list answer does not parse: {e}")))?;
    let objects: Vec<Value> = parsed
        .contents
        .iter()
        .map(|o| {
            json!({
                "key": o.key,
                "size": o.size,
                "last_modified": o.last_modified,
                "etag": o.etag.as_deref().map(|e| e.trim_matches('"')),
            })
        })
        .collect();
    let truncated = parsed.next_continuation_token.is_some();
    Ok(ToolOutput::ok(
        format!(
            "{} object(s) in {}{}",
            objects.len(),
            i.bucket,
            if truncated {
                " (more: continuation_token)"
            } else {
                ""
            }
        ),
        json!({
            "bucket": i.bucket,
            "objects": objects,
            "truncated": truncated,
            "next_continuation_token": parsed.next_continuation_token,
        }),
    ))
}

#[derive(Deserialize)]
struct ObjectInput {
    bucket: String,
    key: String,
}

async fn cloud_get(
    cloud: Arc<Cloud>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ObjectInput = parse(input)?;
    let (store, bucket) = cloud.object(&i.bucket, &i.key)?;
    let url = bucket
        .get_object(store.credentials.as_ref(), &i.key)
        .sign(SIGNED_FOR);
    let resp = store.send(Method::GET, url, None, None).await?;
    let what = format!("object '{}' of bucket '{}'", i.key, i.bucket);
    if !resp.is_success() {
        return Err(s3_error(&resp, &what));
    }
    if resp.truncated {
        return Err(ToolError::TooLarge(format!(
            "{what} is larger than the limit of {} bytes",
            store.settings.max_object_bytes
        )));
    }
    let mut out = json!({
        "bucket": i.bucket,
        "key": i.key,
        "size": resp.body.len(),
        "content_type": resp.content_type(),
        "etag": resp.header("etag").map(|e| e.trim_matches('"')),
    });
    match std::str::from_utf8(&resp.body) {
        Ok(text) => out["text"] = json!(text),
        Err(_) => {
            out["content_base64"] =
                json!(base64::engine::general_purpose::STANDARD.encode(&resp.body))
        }
    }
    Ok(ToolOutput::ok(
        format!("{what}: {} bytes", resp.body.len()),
        out,
    ))
}

#[derive(Deserialize)]
struct PutInput {
    bucket: String,
    key: String,
    text: Option<String>,
    content_base64: Option<String>,
    content_type: Option<String>,
}

async fn cloud_put(
    cloud: Arc<Cloud>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: PutInput = parse(input)?;
    let (store, bucket) = cloud.object(&i.bucket, &i.key)?;
    let (body, default_type) = match (i.text, i.content_base64) {
        (Some(t), None) => (t.into_bytes(), "text/plain; charset=utf-8"),
        (None, Some(b)) => (
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| ToolError::InvalidInput(format!("content_base64: {e}")))?,
            "application/octet-stream",
        ),
        _ => {
            return Err(ToolError::InvalidInput(
                "give either text or content_base64".into(),
            ));
        }
    };
    let limit = store.settings.max_object_bytes;
    if body.len() > limit {
        return Err(ToolError::TooLarge(format!(
            "the object is {} bytes, more than the limit of {limit}",
            body.len()
        )));
    }
    let content_type = i.content_type.as_deref().unwrap_or(default_type);
    let mut action = bucket.put_object(store.credentials.as_ref(), &i.key);
    // Signed, so the store keeps exactly this type.
    action.headers_mut().insert("content-type", content_type);
    let size = body.len();
    let resp = store
        .send(
            Method::PUT,
            action.sign(SIGNED_FOR),
            Some(content_type),
            Some(body),
        )
        .await?;
    if !resp.is_success() {
        return Err(s3_error(
            &resp,
            &format!("writing '{}' to bucket '{}'", i.key, i.bucket),
        ));
    }
    Ok(ToolOutput::ok(
        format!("wrote {size} bytes to {}/{}", i.bucket, i.key),
        json!({
            "bucket": i.bucket,
            "key": i.key,
            "size": size,
            "etag": resp.header("etag").map(|e| e.trim_matches('"')),
        }),
    ))
}

async fn cloud_delete(
    cloud: Arc<Cloud>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ObjectInput = parse(input)?;
    let (store, bucket) = cloud.object(&i.bucket, &i.key)?;
    let url = bucket
        .delete_object(store.credentials.as_ref(), &i.key)
        .sign(SIGNED_FOR);
    let resp = store.send(Method::DELETE, url, None, None).await?;
    if !resp.is_success() {
        return Err(s3_error(
            &resp,
            &format!("deleting '{}' from bucket '{}'", i.key, i.bucket),
        ));
    }
    // S3 answers 204 whether or not the key existed.
    Ok(ToolOutput::ok(
        format!("deleted {}/{}", i.bucket, i.key),
        json!({"bucket": i.bucket, "key": i.key, "deleted": true}),
    ))
}
