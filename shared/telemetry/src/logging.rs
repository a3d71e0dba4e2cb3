//! Log set-up.
//!
//! JSON lines by default (one object per event, with the span fields: request ids, job ids);
//! human-readable when `GATHERING_ENV=development` and stderr is a terminal. The level comes
//! from `RUST_LOG`, else `LOG_LEVEL`, else `info`. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! the trace id of each request travels in `traceparent` headers and in the logs.

use std::io::IsTerminal;

use gathering_core::Environment;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber. Safe to call more than once (tests start several
/// services in one process): later calls do nothing.
pub fn init_logging(service: &'static str, env: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            EnvFilter::try_new(
                std::env::var("LOG_LEVEL")
                    .unwrap_or_default()
                    .to_lowercase(),
            )
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = env.is_development() && std::io::stderr().is_terminal();
    let result = if pretty {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .with_span_list(false)
            .with_span_events(FmtSpan::NONE)
            .flatten_event(true)
            .try_init()
    };
    if result.is_ok() {
        tracing::info!(service, environment = %env, version = gathering_core::VERSION, "starting");
    }
}
