//! Route table. Every route is served at `/x` and at `/api/x` (contract §0): the dashboard
//! calls `/api/…` in production and through its dev proxy.

mod agents;
mod auth;
mod background_tasks;
mod catalogue;
pub(crate) mod chat;
pub(crate) mod circles;
mod conversations;
mod dashboard;
#[cfg(test)]
mod documented;
mod goals;
mod health;
mod lsp;
mod memories;
mod pipeline_approvals;
mod pipelines;
mod plugins;
mod projects;
mod root;
mod scheduled_actions;
pub(crate) mod session;
mod settings;
mod tools;
mod usage;
mod workspace;

use actix_web::web;

/// Registers every route on `cfg`; called once at the root and once under `/api`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure);
    cfg.configure(settings::configure);
    cfg.configure(usage::configure);
    cfg.configure(auth::configure);
    cfg.configure(session::configure);
    cfg.configure(chat::configure);
    cfg.configure(background_tasks::configure);
    cfg.configure(projects::configure);
    cfg.configure(tools::configure);
    cfg.configure(scheduled_actions::configure);
    cfg.configure(catalogue::configure);
    cfg.configure(agents::configure);
    cfg.configure(memories::configure);
    cfg.configure(pipelines::configure);
    cfg.configure(plugins::configure);
    cfg.configure(goals::configure);
    cfg.configure(dashboard::configure);
    cfg.configure(workspace::configure);
    cfg.configure(lsp::configure);
    cfg.configure(circles::configure);
    cfg.configure(conversations::configure);
    cfg.configure(crate::ws::configure);
    cfg.configure(crate::openapi::configure);
}

/// The route modules' OpenAPI documents with their tag (name, description), merged by
/// `crate::openapi::document` (convention in `crate::openapi`).
pub(crate) fn openapi_modules() -> Vec<(&'static str, &'static str, utoipa::openapi::OpenApi)> {
    use utoipa::OpenApi;
    vec![
        ("root", "The API's entry point", root::Api::openapi()),
        (
            "health",
            "Health, readiness, metrics and monitoring",
            health::Api::openapi(),
        ),
        (
            "auth",
            "Accounts, tokens and sessions",
            auth::Api::openapi(),
        ),
        (
            "session",
            "Browser sessions in cookies, and the sign-in page",
            {
                let mut api = session::Api::openapi();
                api.merge(crate::login::Api::openapi());
                api
            },
        ),
        ("chat", "Chatting with an agent", chat::Api::openapi()),
        (
            "background-tasks",
            "Agents' long-running background tasks",
            background_tasks::Api::openapi(),
        ),
        (
            "catalogue",
            "LLM providers, models, personas and agent rows",
            catalogue::Api::openapi(),
        ),
        (
            "agents",
            "Agents, their sessions, memory and skills",
            agents::Api::openapi(),
        ),
        (
            "memories",
            "Agents' memories and the knowledge base",
            memories::Api::openapi(),
        ),
        (
            "goals",
            "Goals as trees and dependency graphs",
            goals::Api::openapi(),
        ),
        (
            "dashboard",
            "The dashboard's aggregated views",
            dashboard::Api::openapi(),
        ),
        (
            "circles",
            "Circles of agents and their work",
            circles::Api::openapi(),
        ),
        (
            "conversations",
            "Conversations between agents",
            conversations::Api::openapi(),
        ),
        (
            "tools",
            "The tool registry and tool execution",
            tools::Api::openapi(),
        ),
        (
            "plugins",
            "Plugins (MCP servers and declarative tools)",
            plugins::Api::openapi(),
        ),
        (
            "pipelines",
            "Pipelines, their runs and validation",
            pipelines::Api::openapi(),
        ),
        (
            "pipeline-approvals",
            "Approvals that pipeline runs wait for",
            pipeline_approvals::Api::openapi(),
        ),
        (
            "scheduled-actions",
            "Scheduled actions and their runs",
            scheduled_actions::Api::openapi(),
        ),
        (
            "projects",
            "Projects and their workspaces",
            projects::Api::openapi(),
        ),
        (
            "workspace",
            "A project's files, git and terminal",
            workspace::Api::openapi(),
        ),
        (
            "lsp",
            "Code intelligence from language servers",
            lsp::Api::openapi(),
        ),
        ("usage", "LLM usage and costs", usage::Api::openapi()),
        (
            "settings",
            "Settings and the gateway's keys and teams",
            settings::Api::openapi(),
        ),
        (
            "ws",
            "WebSockets (GET upgrade requests; token as ?token=)",
            crate::ws::Api::openapi(),
        ),
    ]
}

/// Routes served only at the root.
pub fn configure_root(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root::index));
    cfg.configure(crate::login::configure);
}
