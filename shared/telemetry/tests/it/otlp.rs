use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio_stream::wrappers::TcpListenerStream;

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_when_an_otlp_endpoint_is_set() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(server))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
    });
    // SAFETY: this test binary runs this one test per process (nextest); nothing else reads
    // the environment concurrently.
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")) };
    gathering_telemetry::init_logging("otlp-test", gathering_core::Environment::Staging);
    {
        let span = tracing::info_span!("handle_request", request_id = "req_1");
        let _g = span.enter();
        tracing::info!("inside the span");
    }
    gathering_telemetry::shutdown_tracing();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = collector.0.lock().unwrap().clone();
        let spans: Vec<_> = got
            .iter()
            .flat_map(|r| r.resource_spans.iter())
            .flat_map(|rs| {
                rs.scope_spans
                    .iter()
                    .flat_map(|s| s.spans.iter())
                    .map(move |sp| (rs, sp))
            })
            .collect();
        if let Some((rs, span)) = spans.iter().find(|(_, s)| s.name == "handle_request") {
            let service = rs
                .resource
                .as_ref()
                .unwrap()
                .attributes
                .iter()
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            assert!(service.contains("gathering-otlp-test"), "{service}");
            assert_eq!(span.trace_id.len(), 16);
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no span exported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
