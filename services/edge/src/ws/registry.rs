//! Live WebSocket connections and their counters, for `GET /ws/stats` (contract §2.19): the
//! `/ws/dashboard` clients the contract names, and the `/ws` event-stream clients too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::auth::AuthUser;
use crate::state::AppState;

#[derive(Debug)]
pub struct ClientStats {
    pub id: String,
    pub connected_at: DateTime<Utc>,
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

#[derive(Default)]
pub struct WsRegistry {
    next_id: AtomicU64,
    total: AtomicU64,
    sent: AtomicU64,
    broadcasts: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientStats>>>,
}

/// Removes its connection from the registry when dropped.
pub struct Registration {
    registry: Arc<WsRegistry>,
    key: u64,
    pub stats: Arc<ClientStats>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

impl Registration {
    pub fn sent(&self, n: u64) {
        self.stats.sent.fetch_add(n, Ordering::Relaxed);
        self.registry.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn received(&self) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
    }

    pub fn broadcast_received(&self) {
        self.registry.broadcasts.fetch_add(1, Ordering::Relaxed);
    }
}

impl WsRegistry {
    pub fn register(self: &Arc<Self>) -> Registration {
        self.register_as(None)
    }

    /// Registers a connection under the client's own id (`/ws/dashboard?client_id=`), else
    /// `ws-N`.
    pub fn register_as(self: &Arc<Self>, client_id: Option<String>) -> Registration {
        let key = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(ClientStats {
            id: client_id.unwrap_or_else(|| format!("ws-{key}")),
            connected_at: Utc::now(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        });
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, stats.clone());
        Registration {
            registry: self.clone(),
            key,
            stats,
        }
    }

    pub fn active(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The open WebSocket connections.
#[utoipa::path(get, path = "/ws/stats", responses(
    (status = 200, description = "`{active_connections, total_connections, total_messages_sent, total_broadcasts, clients: [...]}`", body = Object),
))]
pub async fn stats(state: web::Data<AppState>, _user: AuthUser) -> HttpResponse {
    let r = &state.ws;
    let clients: Vec<_> = r
        .clients
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .map(|c| {
            json!({
                "client_id": c.id,
                "connected_at": c.connected_at.to_rfc3339(),
                "messages_sent": c.sent.load(Ordering::Relaxed),
                "messages_received": c.received.load(Ordering::Relaxed),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "active_connections": clients.len(),
        "total_connections": r.total.load(Ordering::Relaxed),
        "total_messages_sent": r.sent.load(Ordering::Relaxed),
        "total_broadcasts": r.broadcasts.load(Ordering::Relaxed),
        "clients": clients,
    }))
}
