//! Database access shared by every service: the connection pool, the embedded migrations
//! (applied under an advisory lock so any number of instances can start at once), and
//! dedicated `LISTEN` connections for wake-ups, and the heartbeats of service instances.

pub mod error;
pub mod heartbeat;
pub mod listen;
pub mod migrate;
pub mod pool;

pub use deadpool_postgres::{GenericClient, Object as Client, Pool, PoolError};
pub use error::DbError;
pub use listen::{Listener, Notification};
pub use migrate::migrate;
pub use pool::{PoolOptions, connect, open};
pub use tokio_postgres;
