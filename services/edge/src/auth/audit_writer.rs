//! Audit rows for refused requests (missing or invalid tokens), written in batches by one task
//! through a bounded queue: a flood of bad requests cannot exhaust the database; when the
//! queue is full, entries are counted and dropped.

use std::net::IpAddr;

use gathering_db::Pool;
use tokio::sync::mpsc;

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
    pub fn start(pool: Pool) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(pool, rx));
        Self { tx }
    }

    pub fn record(&self, refusal: Refusal) {
        if self.tx.try_send(refusal).is_err() {
            metrics::counter!("edge_audit_dropped_total").increment(1);
        }
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Refusal>) {
    let mut batch = Vec::with_capacity(256);
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let types: Vec<&str> = batch.iter().map(|r| r.event_type).collect();
        let messages: Vec<&str> = batch.iter().map(|r| r.message.as_str()).collect();
        let ips: Vec<Option<IpAddr>> = batch.iter().map(|r| r.ip).collect();
        let agents: Vec<Option<&str>> = batch.iter().map(|r| r.user_agent.as_deref()).collect();
        let ids: Vec<Option<&str>> = batch.iter().map(|r| r.request_id.as_deref()).collect();
        let result = async {
            let client = pool.get().await?;
            client
                .execute(
                    "INSERT INTO audit.security_events (event_type, severity, message, ip_address, user_agent, request_id) \
                     SELECT t, 'info', m, i, a, r FROM unnest($1::text[], $2::text[], $3::inet[], $4::text[], $5::text[]) \
                     AS x(t, m, i, a, r)",
                    &[&types, &messages, &ips, &agents, &ids],
                )
                .await
                .map_err(gathering_db::DbError::from)
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, count = batch.len(), "audit rows for refused requests lost");
        }
    }
}
