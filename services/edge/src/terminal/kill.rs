//! Killing everything a terminal started: the processes of the shell's session (whatever
//! process group job control put them in) and all their descendants, found in `/proc`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `(pid, ppid, session)` of every process, from `/proc/<pid>/stat`.
fn processes() -> Vec<(i32, i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may hold spaces and parentheses: fields follow the last ')'.
            let rest = stat.get(stat.rfind(')')? + 2..)?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            // state ppid pgrp session
            Some((pid, f.get(1)?.parse().ok()?, f.get(3)?.parse().ok()?))
        })
        .collect()
}

/// The processes of session `sid` and their descendants.
fn members(sid: i32) -> HashSet<i32> {
    let procs = processes();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, ppid, _) in &procs {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut out: HashSet<i32> = procs
        .iter()
        .filter(|(_, _, s)| *s == sid)
        .map(|(p, _, _)| *p)
        .collect();
    out.insert(sid);
    let mut stack: Vec<i32> = out.iter().copied().collect();
    while let Some(p) = stack.pop() {
        for c in children.get(&p).into_iter().flatten() {
            if out.insert(*c) {
                stack.push(*c);
            }
        }
    }
    out
}

/// SIGKILLs session `sid` and its descendants, in rounds until none is alive (a process may
/// fork while we kill). Blocking: a scan of `/proc` per round.
pub fn kill_session(sid: i32) {
    if sid <= 1 {
        return;
    }
    let _ = nix::sys::signal::killpg(Pid::from_raw(sid), Signal::SIGKILL);
    for _ in 0..10 {
        let alive: Vec<i32> = members(sid)
            .into_iter()
            .filter(|p| kill(Pid::from_raw(*p), None).is_ok())
            .filter(|p| !is_zombie(*p))
            .collect();
        if alive.is_empty() {
            return;
        }
        for p in alive {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!(sid, "terminal processes still alive after ten kill rounds");
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.get(s.rfind(')')? + 2..).map(|r| r.starts_with('Z')))
        .unwrap_or(true)
}
