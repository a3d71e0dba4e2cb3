//! Observability shared by every service: JSON logs through `tracing`, Prometheus metrics,
//! and the admin endpoints (`/health`, `/health/ready`, `/health/live`, `/metrics`).

pub mod admin;
pub mod grpc;
pub mod logging;
pub mod metrics_registry;

pub use admin::{AdminServer, AdminState, admin_router, serve_admin};
pub use logging::{init_logging, shutdown_tracing};
pub use metrics_registry::prometheus;
