//! WebSockets. `/ws` (contract §4.1) streams the event log to dashboards: subscriptions by
//! topic, resumption from `last_event_id` with no gap, and a `lagged` notice instead of
//! unbounded buffering for a slow client. `/ws/dashboard` (§4.5) broadcasts every event to
//! dashboards. `/ws/stats` reports the connections. `/ws/chat/{id}` (§4.3) streams an agent's
//! answer; `/ws/conversation/{id}` (§4.4) a conversation's turns. `/ws/terminal/{id}` (§4.2) is
//! a web terminal.

mod chat;
mod conversation;
mod dashboard;
mod events;
mod registry;
mod terminal;

use actix_web::web;

pub use registry::WsRegistry;

/// The WebSocket routes, documented as the `GET` upgrade requests they are.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    events::connect,
    registry::stats,
    dashboard::connect,
    chat::connect,
    conversation::connect,
    terminal::connect
))]
pub(crate) struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(events::connect))
        .route("/ws/stats", web::get().to(registry::stats))
        .route("/ws/dashboard", web::get().to(dashboard::connect))
        .route("/ws/chat/{agent_id}", web::get().to(chat::connect))
        .route(
            "/ws/conversation/{conv_id}",
            web::get().to(conversation::connect),
        )
        .route(
            "/ws/terminal/{project_id}",
            web::get().to(terminal::connect),
        );
}
