//! Integration tests of gathering-tools (one test binary; each module one area).

mod code;
mod db_skills;
mod enablement;
mod filesystem;
mod git;
mod helpers;
mod http;
mod notifications;
mod projects;
mod registry;
mod shell;
mod ssrf;
mod validation;
mod web;
