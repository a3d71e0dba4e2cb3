//! Telemetry tests: spans exported over OTLP to a real gRPC collector.

mod otlp;
