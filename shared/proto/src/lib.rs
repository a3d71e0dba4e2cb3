//! gRPC types and clients/servers generated from `proto/gathering/v1`, and the interceptors
//! that carry and check service credentials on every internal call.

pub mod service_auth;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("gathering.v1");
}
