//! Audit of refused requests (missing or invalid tokens). The auth service owns the audit log,
//! so this batches the refusals and sends them over gRPC (`RecordRefusals`) from one task,
//! through a bounded queue: a flood of bad requests costs one call per batch, and when the queue
//! is full entries are counted and dropped rather than slowing requests down.

use std::net::IpAddr;

use gathering_proto::v1 as pb;
use tokio::sync::mpsc;

use super::client::AuthClient;

/// Largest batch per call (the auth service accepts up to 1000).
const BATCH: usize = 256;

#[derive(Debug, Clone)]
pub struct Refusal {
    pub event_type: &'static str,
    pub message: String,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Refusal>,
}

impl AuditWriter {
    pub fn start(auth: AuthClient) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(auth, rx));
        Self { tx }
    }

    pub fn record(&self, refusal: Refusal) {
        if self.tx.try_send(refusal).is_err() {
            metrics::counter!("edge_audit_dropped_total").increment(1);
        }
    }
}

fn to_proto(r: Refusal) -> pb::Refusal {
    pb::Refusal {
        event_type: r.event_type.to_owned(),
        message: r.message,
        client: Some(pb::ClientInfo {
            ip: r.ip.map(|i| i.to_string()).unwrap_or_default(),
            user_agent: r.user_agent.unwrap_or_default(),
            request_id: r.request_id.unwrap_or_default(),
        }),
    }
}

async fn run(mut auth: AuthClient, mut rx: mpsc::Receiver<Refusal>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(to_proto(first));
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(to_proto(r)),
                Err(_) => break,
            }
        }
        let count = batch.len();
        let req = pb::RecordRefusalsRequest {
            refusals: std::mem::take(&mut batch),
        };
        if let Err(e) = auth.record_refusals(req).await {
            metrics::counter!("edge_audit_dropped_total").increment(count as u64);
            tracing::warn!(error = %e, count, "audit rows for refused requests lost");
        }
    }
}
