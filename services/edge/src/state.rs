//! What every request handler can reach.

use std::time::Instant;

use gathering_core::Readiness;
use gathering_core::seal::MasterKey;
use gathering_db::Pool;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub readiness: Readiness,
    pub started: Instant,
    pub config: Config,
    /// Seals secrets stored through the API (provider keys).
    pub master_key: MasterKey,
}
