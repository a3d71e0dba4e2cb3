//! gathering-circles over a real PostgreSQL (a fresh database per test): routing, admission,
//! conflicts, human reviews and escalation, conversations' store rules, the agents' skill.
//! Model calls are exercised end to end by the edge and e2e tests (real executors, fake
//! provider).

mod flows;
mod helpers;
mod reviews_and_members;
mod skills;
