//! `pipeline_run.execute` `{"run_id"}` (queue `pipelines`): executes a pipeline run (contract
//! §5, BEHAVIOUR.md A13) on whichever executor claims the job. The API and the scheduler
//! create the run and enqueue the job; any executor may execute, resume (after another one
//! died: completed nodes are not run again) or stop it (cancel, timeout).
//!
//! - `run`: the loop of one job attempt; `load`: claiming the run and rebuilding its state;
//!   `progress`: the run's state and what starts; `results`: what finished attempts mean and
//!   when the run is over; `nodes`: what each node type does; `cancel`: cancels reaching the
//!   executor that holds a run; `approvals`: approval nodes (waiting for a person without
//!   holding a worker); `template`: `{{node.field}}` references.
//! - Every write of the pipeline tables is `gathering_pipeline`'s, which owns them (this
//!   module only reads them): `run_state` (the claim and the fenced writes), `circuits`
//!   (breakers shared through Postgres), `subrun` (sub-runs), `approval` (approval rows).

mod approvals;
mod cancel;
mod load;
mod nodes;
mod progress;
mod results;
mod run;
mod template;

use std::sync::Arc;
use std::time::Duration;

use gathering_agents::AgentRuntime;
use gathering_db::Pool;
use gathering_pipeline::store::JOB_KIND;
use gathering_queue::{
    Backoff, HandlerResult, JobContext, JobError, KindOptions, Outcome, Registry,
};
use gathering_tools::Toolbox;

use crate::deps::Deps;

/// What node executions use.
pub struct Services {
    pub pool: Pool,
    pub tools: Arc<Toolbox>,
    pub agents: AgentRuntime,
    /// Wakes event listeners after the run-progress transactions commit (coalesced).
    pub announcer: gathering_events::Announcer,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Db(#[from] gathering_db::DbError),
    #[error(transparent)]
    Events(#[from] gathering_events::EventError),
    #[error(transparent)]
    Pipeline(#[from] gathering_pipeline::PipelineError),
}

impl From<gathering_db::tokio_postgres::Error> for RunError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        RunError::Db(e.into())
    }
}

impl From<gathering_db::PoolError> for RunError {
    fn from(e: gathering_db::PoolError) -> Self {
        RunError::Db(e.into())
    }
}

struct Engine {
    services: Arc<Services>,
    cancels: cancel::CancelWatch,
}

impl Engine {
    async fn handle(&self, ctx: JobContext) -> HandlerResult {
        let Some(run_id) = ctx.job.payload.get("run_id").and_then(|v| v.as_i64()) else {
            return Err(JobError::discard("payload has no integer 'run_id'"));
        };
        // A token per job attempt (snoozes keep the attempt number, so it is not enough).
        let runner = format!(
            "{}:{}:{:016x}",
            ctx.job.id,
            ctx.job.attempt,
            rand::random::<u64>()
        );
        match run::execute(&self.services, &self.cancels, run_id, &runner, &ctx.cancel).await {
            Ok(run::Ended::Finished | run::Ended::Stopped) => Ok(Outcome::Completed),
            Ok(run::Ended::Snooze(delay)) => Ok(Outcome::Snooze {
                delay,
                payload: None,
            }),
            Ok(run::Ended::Interrupted) => Err(JobError::retry(
                "interrupted (lease lost or shutting down); another attempt resumes the run",
            )),
            Err(e) => {
                tracing::warn!(run_id, error = %e, "pipeline run attempt failed; it will resume");
                Err(JobError::retry(e))
            }
        }
    }
}

/// Registers `pipeline_run.execute`.
pub fn register(registry: &mut Registry, deps: &Deps) {
    let engine = Arc::new(Engine {
        services: Arc::new(Services {
            pool: deps.pool.clone(),
            tools: deps.tools.clone(),
            agents: deps.agents.clone(),
            announcer: deps.events.announcer().clone(),
        }),
        cancels: cancel::CancelWatch::start(deps.pool.clone(), deps.database_url.clone()),
    });
    // The run keeps its own timeout; infrastructure failures retry soon and resume.
    let options = KindOptions {
        timeout: None,
        backoff: Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            jitter: 0.2,
        },
    };
    registry.register_with(JOB_KIND, options, move |ctx| {
        let engine = engine.clone();
        async move { engine.handle(ctx).await }
    });
}
