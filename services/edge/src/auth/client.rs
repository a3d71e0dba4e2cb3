//! The gRPC client of the auth service, connected lazily (the edge may start first). Every
//! call carries the edge's service token; calls made for a user also carry that user's access
//! token (see [`with_user`]), which the auth service checks itself.

use std::time::Duration;

use gathering_proto::service_auth::{AuthedChannel, ServiceAuth};
use gathering_proto::v1::auth_service_client::AuthServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

pub type AuthClient = AuthServiceClient<AuthedChannel>;

/// Metadata key of the acting user's access token.
pub const USER_TOKEN_KEY: &str = "x-gathering-user-token";

pub fn connect(url: &str, auth: ServiceAuth) -> Result<AuthClient, tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(AuthServiceClient::with_interceptor(channel, auth))
}

/// A request made on behalf of the user whose access token is `token` (`None` in no-auth
/// development mode, where the auth service accepts the local developer instead).
pub fn with_user<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(t) = token.and_then(|t| MetadataValue::try_from(t).ok()) {
        req.metadata_mut().insert(USER_TOKEN_KEY, t);
    }
    req
}
