//! What job handlers need, built once per executor.

use gathering_db::Pool;
use gathering_events::Publisher;
use gathering_queue::Queue;

#[derive(Clone)]
pub struct Deps {
    pub pool: Pool,
    pub queue: Queue,
    pub events: Publisher,
    pub database_url: String,
}
