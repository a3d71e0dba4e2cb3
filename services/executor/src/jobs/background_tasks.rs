//! `background_task.run`: an agent's background task (the runtime is in `gathering-agents`).

use std::time::Duration;

use gathering_agents::tasks;
use gathering_queue::{Backoff, KindOptions, Registry};

use crate::deps::Deps;

pub fn register(registry: &mut Registry, deps: &Deps) {
    let runtime = deps.agents.clone();
    // The task keeps its own timeout; the job retries infrastructure failures quickly and
    // resumes from the checkpoint.
    let options = KindOptions {
        timeout: None,
        backoff: Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            jitter: 0.2,
        },
    };
    registry.register_with(tasks::JOB_KIND, options, move |ctx| {
        tasks::handle(runtime.clone(), ctx)
    });
}
