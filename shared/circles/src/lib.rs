//! Circles of agents and agent conversations (BEHAVIOUR A2, A3; contract §2.5, §2.6, §4.4),
//! shared by the edge (which serves them) and the executors (which run them).
//!
//! This crate owns the writes of `circle.circles`, `circle.members`, `circle.tasks`,
//! `circle.conflicts`, `review.reviews` (circle reviews), `communication.conversations` and
//! `communication.messages`; the edge routes, the executor job handlers and the agents' `circles`
//! skill all go through it, so every path applies the same rules and emits the same events.
//!
//! # How a task moves
//!
//! `pending` (no qualified member yet, or no automatic routing) → `assigned` (routed: best
//! competency coverage, then lowest workload, then best approval rate) → `in_progress` (a
//! `circle_task.work` job on an executor runs the agent) → `in_review` (a member other than
//! the author reviews: a `circle_task.review` job, or a human through approve/reject) →
//! `completed`; or back to `assigned` with the reviewer's comments, until a bounded number of
//! rounds escalates it (`failed`, reason `escalated`). Work is admitted into a circle up to its
//! `max_concurrent_tasks` (a slot is taken when the job is enqueued and given back when the
//! work ends), so a running circle never floods the executors.
//!
//! # Exactly once
//!
//! Jobs are at-least-once (a killed executor's job runs again elsewhere), so every transition
//! is a compare-and-set in one transaction with its events: the work job claims the task under
//! a fresh `runner` token and its result is stored only while that token still holds and the
//! task is still `in_progress`; a verdict applies only to the iteration under review (and one
//! review row per iteration is unique). A duplicated or retried job therefore never applies a
//! result twice; a zombie executor's late result is refused. Conversations are the same: each
//! message is stored by `UPDATE … WHERE turns_taken = n AND runner = me`, and
//! `(conversation_id, turn)` is unique.
//!
//! # Modules
//!
//! `circles` (circles and members), `routing` (who does and who reviews), `dispatch`
//! (admission and work jobs), `tasks` (creation, views, submission), `review` (verdicts, human
//! and automatic), `work` (the work job), `conflicts`, `metrics`, `conversations` (store, turn
//! strategies, the run job, token streaming), `skills` (the agents' `circles` tools).

pub mod circles;
pub mod completion;
pub mod config;
pub mod conflicts;
pub mod conversations;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod input;
pub mod metrics;
pub mod platform;
pub mod review;
pub mod review_job;
pub mod routing;
pub mod skills;
pub mod stats;
pub mod tasks;
pub mod work;

use gathering_agents::AgentRuntime;
use gathering_db::Pool;
use gathering_queue::Queue;

pub use config::CirclesConfig;
pub use error::CircleError;

/// The queue every circle job runs on.
pub const QUEUE: &str = "circles";

/// What the API side needs: the database, the queue, the settings. Cheap to clone.
#[derive(Clone)]
pub struct Circles {
    pub pool: Pool,
    pub queue: Queue,
    pub config: CirclesConfig,
}

impl Circles {
    pub fn new(pool: Pool, config: CirclesConfig) -> Self {
        Self {
            queue: Queue::new(pool.clone()),
            pool,
            config,
        }
    }
}

/// What the job handlers need besides: the agent runtime (persona, memory, tools, gateway).
#[derive(Clone)]
pub struct Workers {
    pub circles: Circles,
    pub agents: AgentRuntime,
}
