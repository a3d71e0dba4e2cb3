//! Executor integration tests: real executors (in-process `start`) on a fresh database per
//! test, real HTTP to a local receiver, and the LLM gateway with a fake provider.

mod pipeline_approvals;
mod pipeline_limits;
mod pipeline_nodes;
mod pipeline_retry;
mod pipelines;
mod queue_metrics;
mod receiver;
mod row_faults;
mod support;
