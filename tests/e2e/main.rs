//! Cross-service end-to-end tests: real `gathering` processes against a real PostgreSQL.

mod compose;
mod stack;
