//! Monitoring for the dashboard's Monitoring page and its "System" light: host and process
//! figures (`GET /health/system`, [`system`]) and live checks of every part GatheRing depends
//! on (`GET /health/checks`, [`checks`]). The probes it needs (gRPC channels to auth and the
//! gateway, the host sampler) are built once at start and kept in the app state.

pub mod checks;
pub mod system;

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

pub struct Monitor {
    pub sampler: system::Sampler,
    /// Lazily connected: a service that is down makes its check fail, not the edge's start.
    pub auth: Channel,
    pub gateway: Channel,
    pub data_dir: PathBuf,
}

fn channel(url: &str) -> Result<Channel, String> {
    Ok(Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(checks::CHECK_TIMEOUT)
        .connect_lazy())
}

impl Monitor {
    pub fn new(auth_url: &str, gateway_url: &str, data_dir: PathBuf) -> Result<Self, String> {
        Ok(Monitor {
            sampler: system::Sampler::new(),
            auth: channel(auth_url)?,
            gateway: channel(gateway_url)?,
            data_dir,
        })
    }
}
