//! Edge integration tests: real auth and edge servers (in-process, random ports) over a fresh
//! database per test.

mod agents_crud;
mod agents_runtime;
mod auth;
mod catalogue;
mod memories;
mod perimeter;
mod pipelines;
mod projects;
mod row_faults;
mod scheduled_actions;
mod support;
mod tools;
mod ws;
