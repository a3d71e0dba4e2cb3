//! What every request handler can reach.

use std::time::Instant;

use gathering_core::Readiness;
use gathering_db::Pool;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub readiness: Readiness,
    pub started: Instant,
}
