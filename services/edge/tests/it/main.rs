//! Edge integration tests: real auth and edge servers (in-process, random ports) over a fresh
//! database per test.

mod agents_crud;
mod agents_runtime;
mod auth;
mod catalogue;
mod goals;
mod goals_plan;
mod memories;
mod monitoring;
mod perimeter;
mod pipelines;
mod plugins;
mod projects;
mod scheduled_actions;
mod support;
mod tools;
mod ws;
