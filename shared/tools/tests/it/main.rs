//! Integration tests of gathering-tools (one test binary; each module one area).

mod calendar;
mod cloud;
mod code;
mod database;
mod db_skills;
mod documents;
mod email;
mod enablement;
mod filesystem;
mod git;
mod git_remote;
mod helpers;
mod http;
mod monitoring;
mod notifications;
mod peers;
mod project_tools;
mod projects;
mod registry;
mod shell;
mod ssrf;
mod validation;
mod web;
