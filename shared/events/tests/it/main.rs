//! Event log tests on a real PostgreSQL.

mod log;
