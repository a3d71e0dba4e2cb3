//! Web terminals (`/ws/terminal/{project_id}`, contract §4.2): a real PTY running the user's
//! shell in the project directory, bound to its WebSocket (so to this edge), limited per user
//! and per edge.
//!
//! The PTY comes from `pty-process` (small, async on tokio, built on `rustix`, which the tree
//! already has): it allocates the pair, makes the shell a session leader with the PTY as its
//! controlling terminal, and resizes it. `portable-pty` does the same with a thread per reader
//! and more dependencies; raw `openpty` would mean writing the session set-up ourselves.
//!
//! No process outlives its terminal: when the socket closes (client gone, idle, shell exited,
//! edge shutting down) every process of the shell's session and every descendant of those
//! (background jobs in their own process groups included) is killed with SIGKILL, in rounds
//! until none is left ([`kill_session`]); the shell also gets SIGKILL if the edge process dies
//! (`PR_SET_PDEATHSIG`). A program that double-forks into a new session is the one way out,
//! which is why running code on the server is gated (`GATHERING_WORKSPACE_EXEC`).

mod kill;
mod registry;

use std::path::Path;

pub use kill::kill_session;
pub use registry::{Registry, Slot};

/// Kills a terminal's session when dropped, whatever ended the task that owned it (a normal
/// close, or the edge's runtime dropping the task at shutdown).
pub struct SessionGuard(pub i32);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        kill_session(self.0);
    }
}

/// A shell on a PTY.
pub struct Shell {
    pub child: tokio::process::Child,
    pub pty: pty_process::Pty,
    /// The shell's pid, which is also its session and process-group id.
    pub sid: i32,
}

/// Starts `shell` in `cwd` on a new PTY of `rows` × `cols`, with a clean environment (the
/// edge's secrets are not passed on).
pub fn spawn(shell: &str, cwd: &Path, rows: u16, cols: u16) -> std::io::Result<Shell> {
    let io = |e: pty_process::Error| std::io::Error::other(e.to_string());
    let (pty, pts) = pty_process::open().map_err(io)?;
    pty.resize(pty_process::Size::new(rows, cols)).map_err(io)?;
    let mut env = gathering_tools::process::base_env();
    env.extend([
        ("TERM".to_owned(), "xterm-256color".to_owned()),
        ("COLORTERM".to_owned(), "truecolor".to_owned()),
        ("SHELL".to_owned(), shell.to_owned()),
        ("PWD".to_owned(), cwd.to_string_lossy().into_owned()),
    ]);
    let cmd = pty_process::Command::new(shell)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .kill_on_drop(true);
    // SAFETY: runs in the child between fork and exec; prctl is a plain system call.
    let cmd = unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        })
    };
    let child = cmd.spawn(pts).map_err(io)?;
    let sid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| std::io::Error::other("the shell exited at once"))?;
    Ok(Shell { child, pty, sid })
}
