//! Reading history: commits (with their files and line counts, in one git call), a file's
//! history, the commit graph, and diffs.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GitError, Opts, check_rev, output, rel_path, run};
use crate::root::ProjectRoot;

const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub files_changed: u64,
    pub insertions: u64,
    pub deletions: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    pub hash: String,
    pub short_hash: String,
    pub author_name: String,
    pub author_email: String,
    /// Seconds since the epoch (author date).
    pub timestamp: i64,
    /// The author date, ISO-8601.
    pub date: String,
    /// The subject line.
    pub message: String,
    pub body: String,
    /// Files the commit touched (empty unless asked for).
    pub files: Vec<String>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub limit: u32,
    /// A branch or any revision (checked with [`check_rev`]).
    pub rev: Option<String>,
    /// Only commits touching this path (confined to the root).
    pub path: Option<String>,
    pub author: Option<String>,
    /// Also list each commit's files and line counts.
    pub with_files: bool,
}

fn iso(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

fn short(hash: &str) -> String {
    hash.chars().take(7).collect()
}

/// A repository without commits has no history: an empty list, not an error.
fn no_commits(e: &GitError) -> bool {
    matches!(e, GitError::Failed(m) if m.contains("does not have any commits")
        || m.contains("bad default revision 'HEAD'")
        || m.contains("unknown revision or path not in the working tree") && m.contains("HEAD"))
}

/// Commits, newest first.
pub async fn log(root: &ProjectRoot, q: &LogQuery) -> Result<Vec<Commit>, GitError> {
    let mut args: Vec<String> = vec![
        "log".into(),
        format!("--max-count={}", q.limit.clamp(1, 1000)),
        format!("--format={RECORD}%H{FIELD}%an{FIELD}%ae{FIELD}%at{FIELD}%s{FIELD}%b{FIELD}"),
    ];
    if q.with_files {
        args.push("--numstat".into());
    }
    if let Some(a) = q.author.as_deref().filter(|a| !a.is_empty()) {
        if a.len() > 200 {
            return Err(GitError::Invalid("author filter is too long".into()));
        }
        args.push(format!("--author={a}"));
    }
    if let Some(rev) = &q.rev {
        check_rev(rev)?;
        args.push(rev.clone());
    }
    args.push("--".into());
    if let Some(p) = &q.path {
        args.push(rel_path(root, p).await?);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = match run(root, &argv, &Opts::default()).await {
        Err(e) if no_commits(&e) => return Ok(Vec::new()),
        other => other?,
    };
    Ok(parse_log(&out))
}

fn parse_log(out: &str) -> Vec<Commit> {
    out.split(RECORD)
        .filter_map(|rec| {
            let f: Vec<&str> = rec.splitn(7, FIELD).collect();
            if f.len() < 6 || f[0].trim().is_empty() {
                return None;
            }
            let hash = f[0].trim().to_owned();
            let timestamp = f[3].parse::<i64>().unwrap_or(0);
            let mut files = Vec::new();
            let mut stats = Stats::default();
            for line in f.get(6).copied().unwrap_or("").lines() {
                let mut parts = line.splitn(3, '\t');
                let (Some(ins), Some(del), Some(path)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                stats.files_changed += 1;
                stats.insertions += ins.parse::<u64>().unwrap_or(0);
                stats.deletions += del.parse::<u64>().unwrap_or(0);
                files.push(path.to_owned());
            }
            Some(Commit {
                short_hash: short(&hash),
                hash,
                author_name: f[1].to_owned(),
                author_email: f[2].to_owned(),
                timestamp,
                date: iso(timestamp),
                message: f[4].to_owned(),
                body: f[5].trim().to_owned(),
                files,
                stats,
            })
        })
        .collect()
}

/// One commit of the graph view.
#[derive(Debug, Clone, Serialize)]
pub struct GraphCommit {
    pub hash: String,
    pub short_hash: String,
    pub parents: Vec<String>,
    pub parent_count: usize,
    pub author_name: String,
    pub author_email: String,
    pub timestamp: i64,
    pub date: String,
    pub message: String,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    pub is_merge: bool,
}

/// The newest `limit` commits in date order with their parents and refs (all branches, or the
/// current one).
pub async fn graph(
    root: &ProjectRoot,
    limit: u32,
    all_branches: bool,
) -> Result<Vec<GraphCommit>, GitError> {
    let count = format!("--max-count={}", limit.clamp(1, 1000));
    let format =
        format!("--format={RECORD}%H{FIELD}%P{FIELD}%an{FIELD}%ae{FIELD}%at{FIELD}%s{FIELD}%D");
    let mut args = vec!["log", count.as_str(), format.as_str(), "--date-order"];
    if all_branches {
        args.push("--all");
    }
    let out = match run(root, &args, &Opts::default()).await {
        Err(e) if no_commits(&e) => return Ok(Vec::new()),
        other => other?,
    };
    Ok(out
        .split(RECORD)
        .filter_map(|rec| {
            let f: Vec<&str> = rec.trim_end_matches('\n').splitn(7, FIELD).collect();
            if f.len() < 6 || f[0].is_empty() {
                return None;
            }
            let parents: Vec<String> = f[1].split_whitespace().map(str::to_owned).collect();
            let (mut branches, mut tags) = (Vec::new(), Vec::new());
            for r in f
                .get(6)
                .copied()
                .unwrap_or("")
                .split(", ")
                .filter(|r| !r.is_empty())
            {
                if let Some(t) = r.strip_prefix("tag: ") {
                    tags.push(t.to_owned());
                } else if let Some(b) = r.strip_prefix("HEAD -> ") {
                    branches.push(b.to_owned());
                } else if r != "HEAD" {
                    branches.push(r.to_owned());
                }
            }
            let timestamp = f[4].parse::<i64>().unwrap_or(0);
            Some(GraphCommit {
                hash: f[0].to_owned(),
                short_hash: short(f[0]),
                parent_count: parents.len(),
                is_merge: parents.len() > 1,
                parents,
                author_name: f[2].to_owned(),
                author_email: f[3].to_owned(),
                timestamp,
                date: iso(timestamp),
                message: f[5].to_owned(),
                branches,
                tags,
            })
        })
        .collect())
}

#[derive(Debug, Clone, Default)]
pub struct DiffQuery {
    /// Show this commit's changes; otherwise the work tree (or the index with `staged`).
    pub commit: Option<String>,
    pub staged: bool,
    pub path: Option<String>,
    /// `--stat` instead of the patch.
    pub stat: bool,
}

/// The diff text and whether it was cut at [`super::MAX_OUTPUT`].
pub async fn diff(root: &ProjectRoot, q: &DiffQuery) -> Result<(String, bool), GitError> {
    let mut args: Vec<String> = Vec::new();
    match &q.commit {
        Some(c) => {
            check_rev(c)?;
            args.extend(["show".into(), "--format=".into(), c.clone()]);
        }
        None => {
            args.push("diff".into());
            if q.staged {
                args.push("--cached".into());
            }
        }
    }
    if q.stat {
        args.push("--stat".into());
    }
    args.extend([
        "--no-ext-diff".into(),
        "--no-textconv".into(),
        "--no-color".into(),
    ]);
    if let Some(p) = &q.path {
        args.push("--".into());
        args.push(rel_path(root, p).await?);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = super::check(&argv, output(root, &argv, &Opts::default()).await?)?;
    Ok((out.stdout, out.stdout_truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_with_numstat() {
        let out = format!(
            "{RECORD}abc1234567{FIELD}Ann{FIELD}ann@x{FIELD}1700000000{FIELD}subject{FIELD}body\n{FIELD}\n\n3\t1\tsrc/a.rs\n-\t-\timg.png\n{RECORD}def{FIELD}Bob{FIELD}b@x{FIELD}1{FIELD}first{FIELD}{FIELD}\n"
        );
        let c = parse_log(&out);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].files, ["src/a.rs", "img.png"]);
        assert_eq!(
            c[0].stats,
            Stats {
                files_changed: 2,
                insertions: 3,
                deletions: 1
            }
        );
        assert_eq!(
            (c[0].body.as_str(), c[0].short_hash.as_str()),
            ("body", "abc1234")
        );
        assert_eq!(c[1].files, Vec::<String>::new());
    }
}
