//! gRPC types and clients/servers generated from `proto/gathering/v1`.

#![allow(clippy::all, missing_docs)]

pub mod v1 {
    tonic::include_proto!("gathering.v1");
}
