//! Service credentials on internal gRPC calls (see `gathering_core::service_token`).
//!
//! Clients wrap their channel with [`ServiceAuth`], which adds a fresh token to every request;
//! servers wrap their service with [`RequireService`], which refuses a call without a valid
//! token with `UNAUTHENTICATED` before any handler runs. The standard health service is added
//! unwrapped, so probes need no credential.

use std::sync::Arc;

use gathering_core::service_token::{METADATA_KEY, ServiceKey, TokenSource};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Adds this process's service token to each outgoing request.
#[derive(Clone)]
pub struct ServiceAuth {
    source: Arc<TokenSource>,
}

impl ServiceAuth {
    /// Credentials for calls made by `caller` (the calling service's name).
    pub fn new(key: ServiceKey, caller: &str) -> Self {
        Self {
            source: Arc::new(TokenSource::new(key, caller)),
        }
    }
}

impl Interceptor for ServiceAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let value = MetadataValue::try_from(self.source.token())
            .map_err(|_| Status::internal("service token is not a valid header value"))?;
        req.metadata_mut().insert(METADATA_KEY, value);
        Ok(req)
    }
}

/// The caller a [`RequireService`] check let through, for handlers that care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingService(pub String);

/// Refuses requests that carry no valid service token.
#[derive(Clone)]
pub struct RequireService {
    key: ServiceKey,
}

impl RequireService {
    pub fn new(key: ServiceKey) -> Self {
        Self { key }
    }
}

impl Interceptor for RequireService {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let token = req
            .metadata()
            .get(METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match self.key.verify(token) {
            Ok(caller) => {
                let caller = CallingService(caller.to_owned());
                req.extensions_mut().insert(caller);
                Ok(req)
            }
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }
}

/// A channel whose requests carry this process's service token.
pub type AuthedChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ServiceAuth>;
