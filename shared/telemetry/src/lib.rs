//! Observability shared by every service: JSON logs through `tracing`, Prometheus metrics,
//! the admin endpoints (`/health`, `/health/ready`, `/health/live`, `/metrics`), and the
//! lifecycle (readiness, ordered teardown) every service starts and stops with.

pub mod admin;
pub mod grpc;
pub mod logging;
pub mod metrics_registry;
pub mod service;

pub use admin::{AdminServer, AdminState, admin_router, serve_admin};
pub use logging::{init_logging, shutdown_tracing};
pub use metrics_registry::prometheus;
pub use service::{Lifecycle, Started};
