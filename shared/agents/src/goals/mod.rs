//! Goals (contract §2.11, BEHAVIOUR A1): what an agent works towards, as a tree (subgoals) and a
//! graph (dependencies), with an activity log.
//!
//! Why here: three callers change goals — the edge's `/goals` routes, the agents' `goals` skill
//! (a tool call inside a chat or a background task), and the executor when a goal's background
//! task ends. One module owns every write to `agent.goals`, `agent.goal_dependencies` and
//! `agent.goal_activities`, so the rules below hold whoever makes the change. It lives in
//! `gathering-agents` because decomposition asks the agent's model (the gateway client is here)
//! and execution hands a goal to a background task (`tasks`, here too); the tools crate sits
//! below this one, so the skill lives in `crate::skills::goals` and calls this module.
//!
//! Rules (each change is one transaction, with its activity rows and its `/ws` events):
//! - **Statuses**: `pending → active` only when no unfinished `blocks` dependency remains and
//!   `attempts < max_attempts` (each start counts an attempt); `blocked` is never set by hand:
//!   a pending goal with an unfinished `blocks` dependency is `blocked`, and becomes `pending`
//!   again as soon as its last blocker completes (or is cancelled or the dependency removed).
//! - **Dependencies** form a DAG: an edge that would close a cycle is refused; so is a
//!   `blocks` edge between a goal and its own ancestor or descendant (it could never finish).
//!   Dependency writes are serialised by one transaction-scoped advisory lock, so two
//!   concurrent edges cannot close a cycle together.
//! - **Progress**: a decomposed goal's progress is the mean of its live (not cancelled)
//!   subgoals', a completed one counting 100, recomputed up the tree on every change below it.
//!   When every live subgoal has completed the parent completes too, unless its
//!   `metadata.auto_complete` is `false` (then it completes on request, and not before).
//! - **Execution** (see [`execution`]): starting a goal may hand it to its agent as a
//!   background task; the task's end completes the goal or fails the attempt, applied in the
//!   same transaction as the task's own final status change, so exactly once.

pub mod decompose;
pub mod execution;
mod graph;
mod lifecycle;
mod read;
mod record;
mod settle;
mod write;

pub use graph::{add_dependency, remove_dependency};
pub use lifecycle::{Transition, transition};
pub use read::{
    ListFilter, activities, dependencies, dependents, get, get_in, list, subgoals, tree,
};
pub use write::{GoalPatch, NewGoal, create, create_in, delete, update};

use crate::AgentError;
use crate::tasks::TaskError;

pub const STATUSES: &[&str] = &[
    "pending",
    "active",
    "blocked",
    "paused",
    "completed",
    "failed",
    "cancelled",
];
pub const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
pub const DEPENDENCY_TYPES: &[&str] = &["blocks", "informs", "enhances"];
/// Statuses after which a goal no longer changes by itself.
pub(crate) const FINISHED: &[&str] = &["completed", "failed", "cancelled"];
/// How deep a tree may grow (root = depth 0).
pub const MAX_DEPTH: i32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum GoalError {
    /// 404 with this detail.
    #[error("{0}")]
    NotFound(String),
    /// 400 with this detail: the change is refused and nothing changed.
    #[error("{0}")]
    Refused(String),
    /// 502: the agent's model failed or did not give a usable answer.
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Agent(#[from] AgentError),
}

impl GoalError {
    pub(crate) fn goal_not_found() -> Self {
        GoalError::NotFound("Goal not found".into())
    }
}

impl From<gathering_db::tokio_postgres::Error> for GoalError {
    fn from(e: gathering_db::tokio_postgres::Error) -> Self {
        GoalError::Agent(e.into())
    }
}

impl From<gathering_db::PoolError> for GoalError {
    fn from(e: gathering_db::PoolError) -> Self {
        GoalError::Agent(e.into())
    }
}

impl From<gathering_events::EventError> for GoalError {
    fn from(e: gathering_events::EventError) -> Self {
        GoalError::Agent(e.into())
    }
}

/// Who made a change, as `goal_activities.actor_type/actor_id` record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    Agent,
    System,
}

impl Actor {
    pub fn user(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::User,
            id: Some(id.into()),
        }
    }

    pub fn agent(id: i64) -> Self {
        Actor {
            kind: ActorKind::Agent,
            id: Some(id.to_string()),
        }
    }

    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: None,
        }
    }

    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            ActorKind::User => "user",
            ActorKind::Agent => "agent",
            ActorKind::System => "system",
        }
    }
}
