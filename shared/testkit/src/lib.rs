//! Test harness shared by every crate's integration tests.
//!
//! - [`TestDb`]: a fresh database per test, cloned from a migrated template (one template per
//!   version of the migrations, built once and reused), dropped when the test ends.
//! - [`process`]: real `gathering` processes, killed with SIGKILL on demand and on drop.
//! - [`http`]: an HTTP client and readiness polling.
//! - [`fake_llm`]: fake LLM provider servers (OpenAI, Anthropic, Ollama wire formats).

pub mod db;
pub mod fake_llm;
pub mod http;
pub mod logs;
pub mod process;
pub mod ws;

pub use db::TestDb;
pub use process::GatheringProcess;

/// Service credentials for gRPC calls a test makes as `caller`, derived from the development
/// master key that test services use when `GATHERING_MASTER_KEY` is unset.
pub fn service_auth(caller: &str) -> gathering_proto::service_auth::ServiceAuth {
    let empty: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let master = gathering_core::seal::MasterKey::from_vars(
        &empty,
        gathering_core::Environment::Development,
    )
    .expect("development master key");
    gathering_proto::service_auth::ServiceAuth::new(
        gathering_core::service_token::ServiceKey::derive(&master),
        caller,
    )
}

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it first,
/// which is rare enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}
