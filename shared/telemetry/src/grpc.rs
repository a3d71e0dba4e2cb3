//! Serving a gRPC service the way every GatheRing gRPC service does: the standard gRPC health
//! service next to it, and the admin HTTP endpoints (`/health`, `/metrics`…) answered on the
//! same port over HTTP/1.1, so one port serves both protocols.

use std::net::SocketAddr;

use gathering_core::Shutdown;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::{AdminState, admin_router};

/// A bound gRPC server.
pub struct GrpcServer {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    health: tonic_health::server::HealthReporter,
}

impl GrpcServer {
    /// Binds `addr` and serves `routes` plus health and admin endpoints until `stop`.
    pub async fn start(
        addr: SocketAddr,
        routes: Routes,
        admin: AdminState,
        stop: Shutdown,
    ) -> std::io::Result<GrpcServer> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::Serving).await;
        let router = routes
            .add_service(health_service)
            .into_axum_router()
            .merge(admin_router(admin));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .accept_http1(true)
                .add_routes(Routes::from(router))
                .serve_with_incoming_shutdown(
                    nodelay(TcpListenerStream::new(listener)),
                    async move { stop.wait().await },
                ),
        );
        Ok(GrpcServer { addr, task, health })
    }

    /// Reports NOT_SERVING through the gRPC health service (readiness for gRPC clients).
    pub async fn set_not_serving(&self) {
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    }
}

/// Sets TCP_NODELAY on every accepted connection (tonic does so only for the listeners it
/// binds itself): without it, small gRPC responses wait on Nagle's algorithm and the peer's
/// delayed ACK, ~40 ms.
fn nodelay(
    incoming: TcpListenerStream,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    incoming.map(|conn| {
        if let Ok(c) = &conn {
            let _ = c.set_nodelay(true);
        }
        conn
    })
}
