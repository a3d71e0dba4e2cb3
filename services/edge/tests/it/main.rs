//! Edge integration tests: real auth and edge servers (in-process, random ports) over a fresh
//! database per test.

mod agents_crud;
mod agents_runtime;
mod auth;
mod browser;
mod browser_sessions;
mod catalogue;
mod circles;
mod circles_stack;
mod conversations;
mod dashboard_files;
mod gateway_keys;
mod goals;
mod goals_plan;
mod login_page;
mod lsp;
mod memories;
mod monitoring;
mod openapi;
mod perimeter;
mod pipeline_approvals;
mod pipelines;
mod plugins;
mod projects;
mod row_faults;
mod scheduled_actions;
mod support;
mod terminal;
mod tools;
mod workspace;
mod workspace_git;
mod ws;
