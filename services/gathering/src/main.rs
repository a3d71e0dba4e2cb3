//! `gathering`: one binary for every GatheRing process.
//!
//! `gathering <service>` runs one service in the foreground; `gathering up` runs all five as
//! supervised child processes; `gathering migrate` applies the migrations and exits. The
//! services themselves live in their own crates; this binary only dispatches.

mod probe;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gathering_core::{Environment, Shutdown};

#[derive(Parser)]
#[command(
    name = "gathering",
    version,
    about = "GatheRing: a collaborative multi-agent AI platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
enum Command {
    /// Start all five services as supervised child processes.
    Up,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the auth service (gRPC, default :50051).
    Auth,
    /// Run the edge: the public REST + WebSocket API (default :8000).
    Edge,
    /// Run an executor: claims and runs jobs (admin on :9101).
    Executor,
    /// Run a scheduler: dispatches due schedules (admin on :9102).
    Scheduler,
    /// Run the LLM gateway (gRPC :50052, HTTP :8001).
    #[command(name = "llm-gateway")]
    LlmGateway,
    /// Administration tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Exit 0 when an http:// URL answers 2xx within 3 s (container health checks).
    Probe { url: String },
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
enum AdminCommand {
    /// Create a user. The password is read from GATHERING_NEW_PASSWORD, else from stdin.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
        role: String,
    },
}

impl Command {
    fn service_name(&self) -> &'static str {
        match self {
            Command::Up => "up",
            Command::Migrate => "migrate",
            Command::Auth => "auth",
            Command::Edge => "edge",
            Command::Executor => "executor",
            Command::Scheduler => "scheduler",
            Command::LlmGateway => "llm-gateway",
            Command::Admin(_) => "admin",
            Command::Probe { .. } => "probe",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gathering: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = cli.command.service_name();
    let result = runtime.block_on(dispatch(cli.command));
    runtime.block_on(async { gathering_telemetry::shutdown_tracing() });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "gathering {name} failed");
            eprintln!("gathering {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    if let Command::Probe { url } = &command {
        return probe::run(url).await;
    }
    let env = Environment::from_vars(&gathering_core::config::ProcessEnv)?;
    gathering_telemetry::init_logging(command.service_name(), env);
    let shutdown = Shutdown::new();
    shutdown.trigger_on_os_signal();
    match command {
        Command::Up => up::run(shutdown).await,
        Command::Migrate => {
            let url = gathering_core::config::database_url(&gathering_core::config::ProcessEnv)?;
            let report = gathering_db::migrate(&url).await?;
            println!("{} migration(s) applied", report.applied.len());
            Ok(())
        }
        Command::Auth => {
            Ok(gathering_auth::run(gathering_auth::Config::from_env()?, shutdown).await?)
        }
        Command::Edge => {
            Ok(gathering_edge::run(gathering_edge::Config::from_env()?, shutdown).await?)
        }
        Command::Executor => {
            Ok(gathering_executor::run(gathering_executor::Config::from_env()?, shutdown).await?)
        }
        Command::Scheduler => Ok(gathering_scheduler::run(
            gathering_scheduler::Config::from_env()?,
            shutdown,
        )
        .await?),
        Command::LlmGateway => Ok(gathering_llm_gateway::run(
            gathering_llm_gateway::Config::from_env()?,
            shutdown,
        )
        .await?),
        Command::Admin(AdminCommand::CreateUser { email, name, role }) => {
            create_user(&email, &name, &role).await
        }
        Command::Probe { .. } => Ok(()),
    }
}

async fn create_user(email: &str, name: &str, role: &str) -> anyhow::Result<()> {
    let password = match std::env::var("GATHERING_NEW_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprint!("password for {email}: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let url = gathering_core::config::database_url(&gathering_core::config::ProcessEnv)?;
    gathering_db::migrate(&url).await?;
    let pool = gathering_db::connect(&url, &Default::default())?;
    let user = gathering_auth::admin::create_user(&pool, email, name, password, role).await?;
    println!("created {} user {} ({})", user.role, user.email, user.id);
    Ok(())
}
