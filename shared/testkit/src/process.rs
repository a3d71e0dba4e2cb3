//! Real `gathering` processes for tests that need them: crash tests kill them with SIGKILL.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// A running `gathering <args>` process. Dropping it kills it.
pub struct GatheringProcess {
    child: Child,
}

impl GatheringProcess {
    /// Starts `exe args…` with `env` added to a clean environment (PATH and HOME kept).
    pub fn spawn(exe: &Path, args: &[&str], env: &HashMap<String, String>) -> GatheringProcess {
        let mut cmd = Command::new(exe);
        cmd.args(args).env_clear();
        for keep in ["PATH", "HOME", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        GatheringProcess { child }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends a signal (SIGTERM for a graceful stop, SIGKILL for a crash).
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
    }

    /// Waits for exit; returns the exit code (None when killed by a signal) and its output.
    pub async fn wait_output(self) -> (Option<i32>, String, String) {
        let out = self
            .child
            .wait_with_output()
            .await
            .expect("wait for process");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}
