//! The edge: GatheRing's only public entry. It serves the REST and WebSocket contract that the
//! dashboard and API clients use (every route at `/x` and at `/api/x`), verifies access
//! tokens, applies rate limits and security headers, and talks to the other services over gRPC
//! and to PostgreSQL.

pub mod auth;
pub mod browser_settings;
pub mod config;
pub mod dashboard_files;
pub mod error;
pub mod login;
pub mod lsp;
pub mod middleware;
pub mod monitoring;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod terminal;
pub mod workspace;
pub mod ws;

pub use config::Config;
pub use error::{ApiError, Error};
pub use startup::{Started, run, start};
