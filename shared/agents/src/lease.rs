//! One message at a time per agent, across every edge: a lease on the agent's row. The lease
//! is renewed while a chat runs and released when it ends; a crashed edge's lease expires.

use std::time::Duration;

use gathering_db::Pool;
use tokio_util::sync::CancellationToken;

use crate::AgentError;

const TTL: Duration = Duration::from_secs(30);

/// A held lease; `release` (or `release_in` a transaction) ends it; dropping it without
/// releasing lets it expire.
pub struct AgentLease {
    pool: Pool,
    agent_id: i64,
    owner: String,
    renew: CancellationToken,
    released: std::sync::atomic::AtomicBool,
}

const RELEASE_SQL: &str = "UPDATE agent.agents SET processing_by = NULL, processing_until = NULL, status = 'idle', \
     last_active_at = now() WHERE id = $1 AND processing_by = $2";

/// Takes the agent's lease, or `AlreadyProcessing` when someone holds it.
pub async fn acquire(pool: &Pool, agent_id: i64) -> Result<AgentLease, AgentError> {
    let owner = uuid::Uuid::new_v4().simple().to_string();
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE agent.agents SET processing_by = $2, \
                 processing_until = now() + $3::int8 * interval '1 millisecond', \
                 status = 'busy', last_active_at = now() \
             WHERE id = $1 AND (processing_until IS NULL OR processing_until < now()) \
               AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL \
             RETURNING id",
            &[&agent_id, &owner, &(TTL.as_millis() as i64)],
        )
        .await?;
    if row.is_none() {
        let exists = client
            .query_opt("SELECT 1 FROM agent.agents WHERE id = $1", &[&agent_id])
            .await?
            .is_some();
        return Err(if exists {
            AgentError::AlreadyProcessing
        } else {
            AgentError::NotFound(agent_id)
        });
    }
    let renew = CancellationToken::new();
    tokio::spawn(renew_loop(
        pool.clone(),
        agent_id,
        owner.clone(),
        renew.clone(),
    ));
    Ok(AgentLease {
        pool: pool.clone(),
        agent_id,
        owner,
        renew,
        released: Default::default(),
    })
}

async fn renew_loop(pool: Pool, agent_id: i64, owner: String, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TTL / 3) => {}
            _ = stop.cancelled() => return,
        }
        let renewed = async {
            let c = pool.get().await?;
            c.execute(
                "UPDATE agent.agents SET processing_until = now() + $3::int8 * interval '1 millisecond' \
                 WHERE id = $1 AND processing_by = $2",
                &[&agent_id, &owner, &(TTL.as_millis() as i64)],
            )
            .await
            .map_err(AgentError::from)
        }
        .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, agent_id, "renewing the agent lease failed");
        }
    }
}

impl AgentLease {
    /// Releases the lease as part of the caller's transaction (one commit for the chat's
    /// results and the release).
    pub async fn release_in<C: gathering_db::GenericClient>(
        &self,
        c: &C,
    ) -> Result<(), AgentError> {
        c.execute(RELEASE_SQL, &[&self.agent_id, &self.owner])
            .await?;
        self.renew.cancel();
        self.released
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    pub async fn release(self) {
        self.renew.cancel();
        if self.released.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let result = async {
            let c = self.pool.get().await?;
            c.execute(RELEASE_SQL, &[&self.agent_id, &self.owner])
                .await
                .map_err(AgentError::from)
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, agent_id = self.agent_id, "releasing the agent lease failed; it will expire");
        }
    }
}

impl Drop for AgentLease {
    fn drop(&mut self) {
        self.renew.cancel();
    }
}
