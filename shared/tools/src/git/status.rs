//! `git status`, parsed once into [`Status`]; the skill and the workspace API each present it
//! in their own shape.

use serde::Serialize;

use super::{GitError, Opts, run};
use crate::root::ProjectRoot;

/// One changed path: its porcelain v1 codes (`X` = index, `Y` = work tree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub path: String,
    /// The path before a rename or copy.
    pub from: Option<String>,
    pub index: char,
    pub worktree: char,
}

impl Entry {
    pub fn untracked(&self) -> bool {
        self.index == '?' && self.worktree == '?'
    }

    pub fn conflicted(&self) -> bool {
        matches!(
            (self.index, self.worktree),
            ('U', _) | (_, 'U') | ('A', 'A') | ('D', 'D')
        )
    }

    /// Something is staged for this path.
    pub fn staged(&self) -> bool {
        !self.untracked() && !self.conflicted() && self.index != ' '
    }

    /// The porcelain code without blanks (`M`, `??`, `MM`, `A`), as the file tree shows it.
    pub fn code(&self) -> String {
        format!("{}{}", self.index, self.worktree).trim().to_owned()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `None` on a detached HEAD.
    pub branch: Option<String>,
    pub upstream: Option<String>,
    pub ahead: u64,
    pub behind: u64,
    pub entries: Vec<Entry>,
}

impl Status {
    pub fn clean(&self) -> bool {
        self.entries.is_empty()
    }

    /// Paths whose entry matches `f`.
    pub fn paths(&self, f: impl Fn(&Entry) -> bool) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| f(e))
            .map(|e| e.path.as_str())
            .collect()
    }
}

/// The status of the work tree (untracked files listed one by one).
pub async fn status(root: &ProjectRoot) -> Result<Status, GitError> {
    let out = run(
        root,
        &[
            "status",
            "--porcelain=v1",
            "--branch",
            "--untracked-files=all",
            "-z",
        ],
        &Opts::default(),
    )
    .await?;
    Ok(parse(&out))
}

/// Parses `git status --porcelain=v1 --branch -z`.
pub fn parse(out: &str) -> Status {
    let mut status = Status::default();
    let mut records = out.split('\0').filter(|r| !r.is_empty());
    while let Some(rec) = records.next() {
        if let Some(b) = rec.strip_prefix("## ") {
            parse_branch(b, &mut status);
            continue;
        }
        let mut chars = rec.chars();
        let (Some(x), Some(y), Some(' ')) = (chars.next(), chars.next(), chars.next()) else {
            continue;
        };
        let path = rec.get(3..).unwrap_or("").to_owned();
        // With -z a rename or copy is followed by its source as a record of its own.
        let from = if matches!(x, 'R' | 'C') {
            records.next().map(str::to_owned)
        } else {
            None
        };
        status.entries.push(Entry {
            path,
            from,
            index: x,
            worktree: y,
        });
    }
    status
}

fn parse_branch(b: &str, status: &mut Status) {
    let (head, track) = b.split_once(" [").unwrap_or((b, ""));
    let (branch, upstream) = head.split_once("...").unwrap_or((head, ""));
    let branch = branch
        .strip_prefix("No commits yet on ")
        .or_else(|| branch.strip_prefix("Initial commit on "))
        .unwrap_or(branch);
    status.branch = (!branch.starts_with("HEAD (no branch)")).then(|| branch.to_owned());
    status.upstream = (!upstream.is_empty()).then(|| upstream.to_owned());
    for part in track.trim_end_matches(']').split(", ") {
        if let Some(n) = part.strip_prefix("ahead ") {
            status.ahead = n.parse().unwrap_or(0);
        } else if let Some(n) = part.strip_prefix("behind ") {
            status.behind = n.parse().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_porcelain_z() {
        let s = parse(
            "## main...origin/main [ahead 2, behind 1]\0M  a.rs\0 M b.rs\0?? new file.txt\0R  c.rs\0old c.rs\0UU d.rs\0",
        );
        assert_eq!(s.branch.as_deref(), Some("main"));
        assert_eq!(s.upstream.as_deref(), Some("origin/main"));
        assert_eq!((s.ahead, s.behind), (2, 1));
        assert_eq!(s.paths(Entry::staged), ["a.rs", "c.rs"]);
        assert_eq!(s.paths(Entry::untracked), ["new file.txt"]);
        assert_eq!(s.paths(Entry::conflicted), ["d.rs"]);
        assert_eq!(s.entries[3].from.as_deref(), Some("old c.rs"));
        assert_eq!(s.entries[1].code(), "M");
        let s = parse("## No commits yet on trunk\0");
        assert_eq!(s.branch.as_deref(), Some("trunk"));
        assert!(s.clean());
    }
}
