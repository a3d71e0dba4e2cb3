//! Executor integration tests: real executors (in-process `start`) on a fresh database per
//! test, real HTTP to a local receiver, and the LLM gateway with a fake provider.

mod pipelines;
mod receiver;
mod row_faults;
mod support;
