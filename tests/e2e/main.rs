//! Cross-service end-to-end tests: real `gathering` processes against a real PostgreSQL.

mod agents;
mod compose;
mod receiver;
mod scheduler;
mod stack;
