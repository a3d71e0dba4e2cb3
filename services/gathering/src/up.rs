//! `gathering up`: the whole stack as supervised child processes.
//!
//! Each service runs as its own process (`gathering <service>`), as in production. A child that
//! exits on its own is restarted with exponential back-off (reset once it has run for a
//! while). On SIGINT/SIGTERM every child gets SIGTERM; stragglers are killed after a deadline,
//! so `up` always exits within 10 seconds.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use gathering_core::Shutdown;
use gathering_core::config::ProcessEnv;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long children get to stop after SIGTERM before SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(8);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long before exiting starts again from the first back-off.
const STABLE_AFTER: Duration = Duration::from_secs(30);

struct Service {
    name: &'static str,
    listens: Vec<(&'static str, SocketAddr)>,
}

pub async fn run(shutdown: Shutdown) -> anyhow::Result<()> {
    // Parse every configuration first: a bad variable stops `up` before anything starts.
    let env = &ProcessEnv;
    let auth = gathering_auth::Config::from_vars(env)?;
    let edge = gathering_edge::Config::from_vars(env)?;
    let executor = gathering_executor::Config::from_vars(env)?;
    let scheduler = gathering_scheduler::Config::from_vars(env)?;
    let gateway = gathering_llm_gateway::Config::from_vars(env)?;

    // Migrate once here, so the children find the schema current.
    let report = gathering_db::migrate(&edge.database_url)
        .await
        .context("migrating")?;
    println!(
        "gathering up: database ready ({} migration(s) applied)",
        report.applied.len()
    );

    let services = vec![
        Service {
            name: "auth",
            listens: vec![("gRPC", auth.addr)],
        },
        Service {
            name: "llm-gateway",
            listens: vec![("gRPC", gateway.grpc_addr), ("HTTP", gateway.http_addr)],
        },
        Service {
            name: "executor",
            listens: vec![("admin", executor.admin_addr)],
        },
        Service {
            name: "scheduler",
            listens: vec![("admin", scheduler.admin_addr)],
        },
        Service {
            name: "edge",
            listens: vec![("HTTP", edge.addr)],
        },
    ];
    let exe = std::env::current_exe().context("locating the gathering binary")?;
    let mut tasks = Vec::new();
    for service in services {
        let listens: Vec<String> = service
            .listens
            .iter()
            .map(|(what, addr)| format!("{what} {addr}"))
            .collect();
        println!("gathering up: {:<12} {}", service.name, listens.join(", "));
        tasks.push(tokio::spawn(supervise(
            exe.clone(),
            service.name,
            shutdown.clone(),
        )));
    }
    println!("gathering up: all services started; Ctrl-C stops them");
    for task in tasks {
        let _ = task.await;
    }
    println!("gathering up: stopped");
    Ok(())
}

fn spawn(exe: &std::path::Path, name: &str) -> std::io::Result<Child> {
    Command::new(exe)
        .arg(name)
        .env("GATHERING_SUPERVISED", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

/// Keeps one service running until shutdown, then stops it.
async fn supervise(exe: std::path::PathBuf, name: &'static str, shutdown: Shutdown) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let mut child = match spawn(&exe, name) {
            Ok(child) => child,
            Err(e) => {
                eprintln!("gathering up: cannot start {name}: {e}");
                if wait_or_shutdown(&shutdown, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tokio::select! {
            status = child.wait() => {
                if shutdown.is_triggered() {
                    return;
                }
                if started.elapsed() >= STABLE_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                eprintln!("gathering up: {name} exited ({status}); restarting in {backoff:?}");
                if wait_or_shutdown(&shutdown, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            _ = shutdown.wait() => {
                stop(name, &mut child).await;
                return;
            }
        }
    }
}

/// Sleeps `delay`; true when shutdown came first.
async fn wait_or_shutdown(shutdown: &Shutdown, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = shutdown.wait() => true,
    }
}

/// SIGTERM, then SIGKILL after the deadline.
async fn stop(name: &str, child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    match tokio::time::timeout(STOP_DEADLINE, child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            eprintln!("gathering up: {name} did not stop in {STOP_DEADLINE:?}; killing it");
            let _ = child.kill().await;
        }
    }
}
