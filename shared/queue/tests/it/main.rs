//! Queue tests on a real PostgreSQL: one database per test.

mod depth;
mod helpers;
mod queue;
mod worker;
