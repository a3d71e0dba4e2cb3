//! Pipelines as the edge and the executors share them (contract §2.14 and §5, BEHAVIOUR.md
//! A13): the definition model (nodes and edges as stored, parsed leniently), validation with
//! the A13 messages, node options (timeouts, retry policy, circuit breakers, failure
//! handling), the run records and their JSON, the events, and every write of the pipeline
//! tables: the API's ([`store`], [`retry`], [`decision`]) and the executor's ([`run_state`],
//! [`circuits`], [`subrun`], [`approval`]).
//!
//! Execution lives in the executor (`services/executor/src/jobs/pipelines`); a run is the job
//! `pipeline_run.execute` `{"run_id"}` on queue `pipelines` ([`store::run_job`]).

pub mod approval;
pub mod circuits;
pub mod decision;
pub mod error;
pub mod events;
pub mod graph;
pub mod model;
pub mod options;
pub mod record;
pub mod retry;
pub mod run_state;
pub mod store;
pub mod subrun;
pub mod validate;

pub use error::PipelineError;
pub use graph::{EdgeKind, Graph};
pub use model::{Definition, Edge, Node, ParseError, Settings, parse_definition};
pub use options::{ErrorKind, NodeOptions, RetryPolicy};
pub use record::{NodeRunRow, PipelineRow, RunRow};
pub use validate::validate;
