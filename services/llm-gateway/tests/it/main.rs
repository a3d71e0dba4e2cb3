//! Integration tests of the LLM gateway: a real gateway (gRPC + HTTP) on a fresh database,
//! against fake providers that are real HTTP servers speaking each wire format, and the edge's
//! `/settings` and `/usage` routes that feed and read it.

mod cache;
mod keys;
mod models_and_refusals;
mod perimeter;
mod reliability;
mod support;
mod teams;
mod usage;
mod wire;
