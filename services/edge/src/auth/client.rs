//! The gRPC client of the auth service, connected lazily (the edge may start first).

use std::time::Duration;

use gathering_proto::v1::auth_service_client::AuthServiceClient;
use tonic::transport::{Channel, Endpoint};

pub type AuthClient = AuthServiceClient<Channel>;

pub fn connect(url: &str) -> Result<AuthClient, tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(AuthServiceClient::new(channel))
}
