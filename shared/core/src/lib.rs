//! Building blocks every GatheRing service shares: configuration read from the environment,
//! the shutdown signal, readiness, secrets that never print, and sealing of secrets at rest.

pub mod backoff;
pub mod claims;
pub mod config;
pub mod email;
pub mod environment;
pub mod jwt_crypto;
pub mod readiness;
pub mod seal;
pub mod secret;
pub mod service_token;
pub mod shutdown;
pub mod tls;

pub use config::ConfigError;
pub use environment::Environment;
pub use readiness::Readiness;
pub use secret::Secret;
pub use shutdown::Shutdown;

/// Version reported by health endpoints and `GET /`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
