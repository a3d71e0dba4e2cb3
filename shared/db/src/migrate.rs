//! Embedded migrations, applied under an advisory lock.
//!
//! Every service migrates on start. The lock makes concurrent starts safe: the first instance
//! applies what is missing while the others wait, then find nothing left to do. The lock is
//! held by a session, so a process that dies mid-way releases it with its connection (and the
//! migration it was running rolls back, since each file runs in one transaction).

use crate::DbError;
use crate::pool::connect_single;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Key of the session advisory lock taken while migrating ("GATHMIGR").
const MIGRATION_LOCK: i64 = 0x4741_5448_4D49_4752;

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Names of the migrations this call applied (empty when the schema was current).
    pub applied: Vec<String>,
}

/// Applies every pending migration to the database at `url`.
pub async fn migrate(url: &str) -> Result<MigrationReport, DbError> {
    let mut client = connect_single(url, "gathering-migrate").await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(&mut client)
        .await;
    // Unlock even when migrating failed; closing the connection would release it too.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = result.map_err(|e| DbError::Migration(e.to_string()))?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect();
    if applied.is_empty() {
        tracing::debug!("database schema is current");
    } else {
        tracing::info!(count = applied.len(), migrations = ?applied, "migrations applied");
    }
    Ok(MigrationReport { applied })
}

/// Names of all embedded migrations, in order.
pub fn embedded_migrations() -> Vec<String> {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect()
}
