//! Event log tests on a real PostgreSQL.

mod announce;
mod log;
