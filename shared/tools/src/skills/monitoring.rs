//! The `monitoring` skill: figures of the host (CPU, memory, swap, load, uptime, the disk
//! holding the project), its busiest processes, and HTTP uptime checks.
//!
//! Host and process figures come from `sysinfo` (read from /proc on Linux). An uptime check is
//! an ordinary outbound request: it goes through the guarded client ([`crate::net`]), so
//! private and loopback addresses are refused unless the operator allow-lists them, redirects
//! are checked hop by hop, and the time and body size are bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use sysinfo::{CpuRefreshKind, ProcessRefreshKind, ProcessesToUpdate, System};
use url::Url;

use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::net::OutboundRequest;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "monitoring";
const MAX_PROCESSES: usize = 100;
const MAX_CHECK_MS: u64 = 30_000;
/// Bytes of the answer an uptime check reads (to look for `contains`).
const CHECK_BODY_BYTES: usize = 256 * 1024;
const MB: f64 = 1024.0 * 1024.0;

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Utility, description)
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    reg.register(
        def("monitor_system", "Host figures: CPU use and count, memory, swap, load average, uptime, and the disk holding the project")
            .permissions(&[Permission::Read])
            .schema(json!({"type": "object", "additionalProperties": false}))
            .output("{host, os, kernel, cpu{count, percent}, memory{total_mb, used_mb, available_mb, percent}, swap{total_mb, used_mb}, load_average{1min, 5min, 15min}, uptime_seconds, disk{path, total_mb, free_mb, percent}}"),
        monitor_system,
    )?;
    reg.register(
        def("monitor_processes", "The host's processes using the most CPU or memory (optionally those whose name contains a text)")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "sort_by": {"type": "string", "enum": ["cpu", "memory"]},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PROCESSES},
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                },
                "additionalProperties": false,
            }))
            .output("{processes[{pid, name, cpu_percent, memory_mb, run_time_seconds, status}], total}"),
        monitor_processes,
    )?;
    reg.register(
        def("monitor_http_check", "Uptime check of a URL through the outbound guard: up or down, status, latency, optional expected status and text")
            .permissions(&[Permission::Network])
            .timeout(Duration::from_millis(MAX_CHECK_MS + 5000))
            .schema(json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "minLength": 1, "maxLength": 2048},
                    "method": {"type": "string", "enum": ["GET", "HEAD"]},
                    "expected_status": {"type": "integer", "minimum": 100, "maximum": 599},
                    "contains": {"type": "string", "minLength": 1, "maxLength": 1000},
                    "timeout_ms": {"type": "integer", "minimum": 100, "maximum": MAX_CHECK_MS},
                },
                "required": ["url"],
                "additionalProperties": false,
            }))
            .output("{url, up, status, latency_ms, reason}"),
        with(svc.clone(), monitor_http_check),
    )?;
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn monitor_system(ctx: CallContext, _input: Value) -> Result<ToolOutput, ToolError> {
    let disk_path = ctx
        .project
        .as_ref()
        .map_or_else(|| std::path::PathBuf::from("/"), |p| p.path().to_path_buf());
    let data = tokio::task::spawn_blocking(move || {
        let mut sys = System::new();
        let cpu = CpuRefreshKind::nothing().with_cpu_usage();
        // CPU use is a difference between two samples.
        sys.refresh_cpu_specifics(cpu);
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        sys.refresh_cpu_specifics(cpu);
        sys.refresh_memory();
        let total = sys.total_memory() as f64;
        let available = sys.available_memory() as f64;
        let used = (total - available).max(0.0);
        let load = System::load_average();
        let disk = match nix::sys::statvfs::statvfs(&disk_path) {
            Ok(s) => {
                let block = s.fragment_size() as f64;
                let total = s.blocks() as f64 * block;
                let free = s.blocks_available() as f64 * block;
                json!({
                    "path": disk_path,
                    "total_mb": round1(total / MB),
                    "free_mb": round1(free / MB),
                    "percent": if total > 0.0 { round1((total - free) / total * 100.0) } else { 0.0 },
                })
            }
            Err(e) => json!({"path": disk_path, "error": e.to_string()}),
        };
        json!({
            "host": System::host_name(),
            "os": System::long_os_version(),
            "kernel": System::kernel_version(),
            "cpu": {"count": sys.cpus().len(), "percent": round1(f64::from(sys.global_cpu_usage()))},
            "memory": {
                "total_mb": round1(total / MB),
                "used_mb": round1(used / MB),
                "available_mb": round1(available / MB),
                "percent": if total > 0.0 { round1(used / total * 100.0) } else { 0.0 },
            },
            "swap": {"total_mb": round1(sys.total_swap() as f64 / MB), "used_mb": round1(sys.used_swap() as f64 / MB)},
            "load_average": {"1min": load.one, "5min": load.five, "15min": load.fifteen},
            "uptime_seconds": System::uptime(),
            "disk": disk,
        })
    })
    .await
    .map_err(|e| ToolError::Failed(e.to_string()))?;
    Ok(ToolOutput::ok(
        format!(
            "CPU {}%, memory {}%, load {}",
            data["cpu"]["percent"], data["memory"]["percent"], data["load_average"]["1min"]
        ),
        data,
    ))
}

#[derive(Deserialize)]
struct ProcessesInput {
    sort_by: Option<String>,
    limit: Option<usize>,
    name: Option<String>,
}

async fn monitor_processes(_ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ProcessesInput = parse(input)?;
    let by_memory = i.sort_by.as_deref() == Some("memory");
    let limit = i.limit.unwrap_or(10).min(MAX_PROCESSES);
    let needle = i.name.map(|n| n.to_lowercase());
    let (list, total) = tokio::task::spawn_blocking(move || {
        let mut sys = System::new();
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        if !by_memory {
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        }
        let mut procs: Vec<_> = sys
            .processes()
            .values()
            .filter(|p| {
                needle
                    .as_ref()
                    .is_none_or(|n| p.name().to_string_lossy().to_lowercase().contains(n))
            })
            .collect();
        let total = procs.len();
        if by_memory {
            procs.sort_by_key(|p| std::cmp::Reverse(p.memory()));
        } else {
            procs.sort_by(|a, b| b.cpu_usage().total_cmp(&a.cpu_usage()));
        }
        let list: Vec<Value> = procs
            .into_iter()
            .take(limit)
            .map(|p| {
                json!({
                    "pid": p.pid().as_u32(),
                    "name": p.name().to_string_lossy(),
                    "cpu_percent": round1(f64::from(p.cpu_usage())),
                    "memory_mb": round1(p.memory() as f64 / MB),
                    "run_time_seconds": p.run_time(),
                    "status": p.status().to_string(),
                })
            })
            .collect();
        (list, total)
    })
    .await
    .map_err(|e| ToolError::Failed(e.to_string()))?;
    Ok(ToolOutput::ok(
        format!("{} of {total} process(es)", list.len()),
        json!({"processes": list, "total": total}),
    ))
}

#[derive(Deserialize)]
struct CheckInput {
    url: String,
    method: Option<String>,
    expected_status: Option<u16>,
    contains: Option<String>,
    timeout_ms: Option<u64>,
}

async fn monitor_http_check(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: CheckInput = parse(input)?;
    let url =
        Url::parse(&i.url).map_err(|e| ToolError::InvalidInput(format!("invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::InvalidInput(
            "only http and https URLs can be checked".into(),
        ));
    }
    let method = if i.method.as_deref() == Some("HEAD") {
        Method::HEAD
    } else {
        Method::GET
    };
    let mut req = OutboundRequest::new(method, url.clone());
    req.timeout = Some(Duration::from_millis(
        i.timeout_ms.unwrap_or(10_000).min(MAX_CHECK_MS),
    ));
    req.max_bytes = Some(CHECK_BODY_BYTES);
    let started = Instant::now();
    let result = svc.http.send(req).await;
    let latency = started.elapsed().as_millis() as u64;
    let (up, status, reason) = match result {
        // The guard's refusal is the caller's problem, not the site being down.
        Err(e @ ToolError::Refused(_)) => return Err(e),
        Err(e) => (false, None, e.to_string()),
        Ok(resp) => {
            let status_ok = match i.expected_status {
                Some(s) => resp.status == s,
                None => resp.status < 400,
            };
            let text_ok = i
                .contains
                .as_ref()
                .is_none_or(|t| resp.text().contains(t.as_str()));
            let reason = match (status_ok, text_ok) {
                (true, true) => "ok".to_owned(),
                (false, _) => format!("unexpected status {}", resp.status),
                (true, false) => "the answer does not contain the expected text".to_owned(),
            };
            (status_ok && text_ok, Some(resp.status), reason)
        }
    };
    Ok(ToolOutput::ok(
        format!(
            "{} is {} ({latency} ms)",
            url,
            if up { "up" } else { "down" }
        ),
        json!({"url": url.as_str(), "up": up, "status": status, "latency_ms": latency, "reason": reason}),
    ))
}
