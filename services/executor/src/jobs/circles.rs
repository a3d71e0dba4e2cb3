//! Circle work (`circle_task.work`), automatic reviews (`circle_task.review`) and conversation
//! runs (`conversation.run`), all on the `circles` queue. The logic is in `gathering-circles`
//! (shared with the edge, which creates the work); each handler makes its own writes
//! idempotent, so the queue's retries and lease take-overs never apply a result twice.

use std::time::Duration;

use gathering_circles::{Workers, completion, conversations, dispatch, review_job, work};
use gathering_queue::{Backoff, KindOptions, Registry};

use crate::deps::Deps;

pub fn register(registry: &mut Registry, deps: &Deps) {
    let workers = Workers {
        circles: deps.circles.clone(),
        agents: deps.agents.clone(),
    };
    // Model calls bound each attempt (the gateway's deadlines, the turn timeout); failures
    // retry quickly with back-off.
    let options = KindOptions {
        timeout: None,
        backoff: Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            jitter: 0.2,
        },
    };
    let w = workers.clone();
    registry.register_with(dispatch::WORK_KIND, options, move |ctx| {
        work::handle(w.clone(), ctx)
    });
    let w = workers.clone();
    registry.register_with(completion::REVIEW_KIND, options, move |ctx| {
        review_job::handle(w.clone(), ctx)
    });
    registry.register_with(conversations::RUN_KIND, options, move |ctx| {
        conversations::run::handle(workers.clone(), ctx)
    });
}
