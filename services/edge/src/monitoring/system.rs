//! Host and process figures for `GET /health/system` (contract §2.1) and the memory and disk
//! checks, read with `sysinfo` (CPU, memory, load, uptime, this process) and `statvfs` (disk of
//! a path). Reading is blocking and CPU usage needs two samples some time apart, so callers run
//! [`Sampler::sample`] on the blocking pool; the sampler keeps its `System` between calls, so
//! CPU usage is the average since the previous call (the first call waits the minimum interval
//! once).

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Value, json};
use sysinfo::{CpuRefreshKind, ProcessRefreshKind, ProcessesToUpdate, System};

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Disk figures of the file system holding `path`, as `df` counts them.
#[derive(Debug, Clone, Copy)]
pub struct Disk {
    pub total_gb: f64,
    pub used_gb: f64,
    pub free_gb: f64,
    pub percent: f64,
}

pub fn disk(path: &Path) -> Result<Disk, String> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let frag = st.fragment_size() as f64;
    let total = st.blocks() as f64 * frag;
    let free_for_users = st.blocks_available() as f64 * frag;
    let used = (st.blocks() as f64 - st.blocks_free() as f64) * frag;
    let percent = if used + free_for_users > 0.0 {
        used / (used + free_for_users) * 100.0
    } else {
        0.0
    };
    Ok(Disk {
        total_gb: round2(total / GB),
        used_gb: round2(used / GB),
        free_gb: round2(free_for_users / GB),
        percent: round2(percent),
    })
}

/// Memory in use, as a percentage of the total (what is not available to new work).
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub total_gb: f64,
    pub available_gb: f64,
    pub used_gb: f64,
    pub percent: f64,
}

pub struct Sampler {
    state: Mutex<State>,
    pid: Option<sysinfo::Pid>,
}

struct State {
    sys: System,
    last_cpu: Option<Instant>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        Sampler {
            state: Mutex::new(State {
                sys: System::new(),
                last_cpu: None,
            }),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    /// Memory figures (cheap; still blocking).
    pub fn memory(&self) -> Memory {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.sys.refresh_memory();
        memory_of(&st.sys)
    }

    /// Every figure of `/health/system`, the disk being the one holding `disk_path`.
    pub fn sample(&self, disk_path: &Path) -> Value {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let cpu = CpuRefreshKind::nothing().with_cpu_usage().with_frequency();
        let fresh = st
            .last_cpu
            .is_none_or(|t| t.elapsed() < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        st.sys.refresh_cpu_specifics(cpu);
        if fresh {
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            st.sys.refresh_cpu_specifics(cpu);
        }
        st.last_cpu = Some(Instant::now());
        st.sys.refresh_memory();
        let process = self.pid.and_then(|pid| {
            st.sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            st.sys.process(pid).map(|p| {
                json!({
                    "pid": pid.as_u32(),
                    "cpu_percent": round2(f64::from(p.cpu_usage())),
                    "memory_mb": round2(p.memory() as f64 / (1024.0 * 1024.0)),
                    "uptime_seconds": p.run_time(),
                })
            })
        });
        let frequency = st
            .sys
            .cpus()
            .first()
            .map(|c| c.frequency())
            .filter(|f| *f > 0);
        let mem = memory_of(&st.sys);
        let load = System::load_average();
        let disk = match disk(disk_path) {
            Ok(d) => {
                json!({"total_gb": d.total_gb, "used_gb": d.used_gb, "free_gb": d.free_gb, "percent": d.percent})
            }
            Err(e) => json!({"error": e}),
        };
        json!({
            "cpu": {
                "percent": round2(f64::from(st.sys.global_cpu_usage())),
                "count": st.sys.cpus().len(),
                "frequency_mhz": frequency,
            },
            "memory": {
                "total_gb": mem.total_gb,
                "available_gb": mem.available_gb,
                "used_gb": mem.used_gb,
                "percent": mem.percent,
            },
            "disk": disk,
            "load_average": {"1min": load.one, "5min": load.five, "15min": load.fifteen},
            "uptime_seconds": System::uptime(),
            "process": process,
        })
    }
}

fn memory_of(sys: &System) -> Memory {
    let total = sys.total_memory() as f64;
    let available = sys.available_memory() as f64;
    let used = (total - available).max(0.0);
    Memory {
        total_gb: round2(total / GB),
        available_gb: round2(available / GB),
        used_gb: round2(used / GB),
        percent: if total > 0.0 {
            round2(used / total * 100.0)
        } else {
            0.0
        },
    }
}
