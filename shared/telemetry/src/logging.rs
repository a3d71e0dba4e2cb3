//! Log and trace set-up.
//!
//! JSON lines by default (one object per event, with the span fields: request ids, job ids);
//! human-readable when `GATHERING_ENV=development` and stderr is a terminal. The level comes
//! from `RUST_LOG`, else `LOG_LEVEL`, else `info`. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! spans are also exported over OTLP/gRPC (batched, off the request path), tagged with
//! `service.name` = `gathering-<service>`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use gathering_core::Environment;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Libraries whose INFO lines repeat what our own start-up lines say (refinery: "current
/// version", "no migrations to apply" in every service on every start, next to our single
/// "migrations applied"; actix-server: its workers and runtime). Their warnings still show;
/// `RUST_LOG` overrides this.
const QUIET_LIBRARIES: &str = "refinery_core=warn,actix_server=warn";

fn filter() -> EnvFilter {
    if let Ok(f) = EnvFilter::try_from_default_env() {
        return f;
    }
    let level = match std::env::var("LOG_LEVEL") {
        Ok(level) if !level.trim().is_empty() => level.trim().to_lowercase(),
        _ => "info".to_owned(),
    };
    EnvFilter::try_new(format!("{level},{QUIET_LIBRARIES}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_LIBRARIES}")))
}

/// The OTLP tracer provider, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Must run inside a
/// tokio runtime (the batch exporter runs on it).
fn otlp_provider(service: &'static str) -> Option<SdkTracerProvider> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("OTLP exporter for {endpoint} not started: {e}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(format!("gathering-{service}"))
        .build();
    // Exported from a tokio task: tonic needs the runtime's reactor.
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build(),
    )
}

/// Installs the global subscriber. Safe to call more than once (tests start several
/// services in one process): later calls do nothing.
pub fn init_logging(service: &'static str, env: Environment) {
    let pretty = env.is_development() && std::io::stderr().is_terminal();
    let provider = otlp_provider(service);
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("gathering")));
    let registry = tracing_subscriber::registry().with(filter()).with(otel);
    let result = if pretty {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_current_span(true)
                    .with_span_list(false)
                    .flatten_event(true),
            )
            .try_init()
    };
    if result.is_ok() {
        if let Some(p) = provider {
            let _ = PROVIDER.set(p);
        }
        tracing::info!(service, environment = %env, version = gathering_core::VERSION, "starting");
    } else if let Err(e) = result {
        eprintln!("logging for {service} not installed: {e}");
    }
}

/// Flushes exported spans; call before the process exits.
pub fn shutdown_tracing() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.shutdown();
    }
}
