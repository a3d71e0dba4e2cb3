//! The audit of auth events (`audit.security_events`): who, from where, what happened. Never a
//! password or a token.

use std::net::IpAddr;

use gathering_db::GenericClient;
use serde_json::Value;

use crate::error::AuthError;

/// The caller as the edge saw it.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Client {
    pub fn from_proto(c: Option<&gathering_proto::v1::ClientInfo>) -> Self {
        let Some(c) = c else { return Self::default() };
        let text =
            |s: &str, max: usize| (!s.is_empty()).then(|| s.chars().take(max).collect::<String>());
        Self {
            ip: c.ip.parse().ok(),
            user_agent: text(&c.user_agent, 512),
            request_id: text(&c.request_id, 128),
        }
    }
}

pub struct Entry<'a> {
    pub event_type: &'a str,
    pub severity: &'a str,
    pub user_id: Option<&'a str>,
    pub message: String,
    pub details: Value,
}

/// Writes audit entries in one statement.
pub async fn record<C: GenericClient>(
    c: &C,
    client: &Client,
    entries: &[Entry<'_>],
) -> Result<(), AuthError> {
    let types: Vec<&str> = entries.iter().map(|e| e.event_type).collect();
    let severities: Vec<&str> = entries.iter().map(|e| e.severity).collect();
    let users: Vec<Option<&str>> = entries.iter().map(|e| e.user_id).collect();
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    let details: Vec<&Value> = entries.iter().map(|e| &e.details).collect();
    let stmt = c
        .prepare_cached(
            "INSERT INTO audit.security_events \
                 (event_type, severity, user_id, message, details, ip_address, user_agent, request_id) \
             SELECT t, s, u, m, d, $6, $7, $8 \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[]) AS x(t, s, u, m, d)",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &types,
            &severities,
            &users,
            &messages,
            &details,
            &client.ip,
            &client.user_agent,
            &client.request_id,
        ],
    )
    .await?;
    Ok(())
}

/// Records and logs a failure to record: auditing must not break the request it describes.
pub async fn record_logged<C: GenericClient>(c: &C, client: &Client, entries: &[Entry<'_>]) {
    if let Err(e) = record(c, client, entries).await {
        tracing::error!(error = %e, "audit write failed");
    }
}

/// Event types the edge may report for refused requests; anything else is refused, so the
/// edge cannot write arbitrary audit entries.
pub const REFUSAL_TYPES: &[&str] = &["auth_missing_token", "auth_invalid_token"];

/// At most this many refusals per call.
pub const MAX_REFUSALS: usize = 1000;

/// Writes refused-request entries, each with its own client, in one statement.
pub async fn record_refusals<C: GenericClient>(
    c: &C,
    refusals: &[gathering_proto::v1::Refusal],
) -> Result<u32, AuthError> {
    if refusals.len() > MAX_REFUSALS {
        return Err(AuthError::InvalidInput(format!(
            "at most {MAX_REFUSALS} refusals per call"
        )));
    }
    let mut types = Vec::with_capacity(refusals.len());
    let mut messages = Vec::with_capacity(refusals.len());
    let mut ips = Vec::with_capacity(refusals.len());
    let mut agents = Vec::with_capacity(refusals.len());
    let mut ids = Vec::with_capacity(refusals.len());
    for r in refusals {
        let Some(t) = REFUSAL_TYPES.iter().find(|t| **t == r.event_type) else {
            return Err(AuthError::InvalidInput(format!(
                "'{}' is not a refusal event type",
                r.event_type.chars().take(50).collect::<String>()
            )));
        };
        let client = Client::from_proto(r.client.as_ref());
        types.push(*t);
        messages.push(r.message.chars().take(1000).collect::<String>());
        ips.push(client.ip);
        agents.push(client.user_agent);
        ids.push(client.request_id);
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO audit.security_events (event_type, severity, message, ip_address, user_agent, request_id) \
             SELECT t, 'info', m, i, a, r FROM unnest($1::text[], $2::text[], $3::inet[], $4::text[], $5::text[]) \
             AS x(t, m, i, a, r)",
        )
        .await?;
    let n = c
        .execute(&stmt, &[&types, &messages, &ips, &agents, &ids])
        .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}
