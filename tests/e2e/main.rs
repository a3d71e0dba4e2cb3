//! Cross-service end-to-end tests: real `gathering` processes against a real PostgreSQL.

mod agents;
mod circles;
mod compose;
mod kubernetes;
mod pipelines;
mod receiver;
mod scheduler;
mod scheduler_actions;
mod soak;
mod stack;
