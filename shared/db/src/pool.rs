//! The connection pool.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

use crate::DbError;

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: usize,
    /// How long a caller waits for a free connection before getting an error.
    pub wait_timeout: Duration,
    /// Name shown in `pg_stat_activity`, to tell services apart.
    pub application_name: String,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            wait_timeout: Duration::from_secs(10),
            application_name: "gathering".into(),
        }
    }
}

/// Builds a pool for `url`. Connections are opened lazily; call `check` to fail fast.
pub fn connect(url: &str, options: &PoolOptions) -> Result<Pool, DbError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| DbError::Config(format!("DATABASE_URL does not parse: {e}")))?;
    config.application_name(&options.application_name);
    config.connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(options.wait_timeout),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// What every service does first: apply pending migrations, build the pool, check it.
pub async fn open(url: &str, options: &PoolOptions) -> Result<Pool, DbError> {
    crate::migrate(url).await?;
    let pool = connect(url, options)?;
    check(&pool).await?;
    Ok(pool)
}

/// Opens one connection and runs `SELECT 1`.
pub async fn check(pool: &Pool) -> Result<(), DbError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// Opens a connection outside any pool (for `LISTEN` and advisory-lock sessions). The
/// connection task is spawned; it ends when the client is dropped.
pub async fn connect_single(
    url: &str,
    application_name: &str,
) -> Result<tokio_postgres::Client, DbError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| DbError::Config(format!("DATABASE_URL does not parse: {e}")))?;
    config.application_name(application_name);
    config.connect_timeout(Duration::from_secs(5));
    // Migrations create their history table IF NOT EXISTS on every start; the server's NOTICE
    // that it exists would be logged at INFO by every service, every time.
    config.options("-c client_min_messages=warning");
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}
