//! Which programs the shell tool starts, and with which options.
//!
//! Programs come in two tiers. Inspection and file utilities (ls, grep, git, tar, …) need only
//! what the tool itself needs; interpreters and build tools (python, node, npm, make, cargo,
//! …) run whatever code the project holds, so they also need the `execute` permission, which
//! ordinary callers do not have outside development. File-changing programs need `write`.
//!
//! Some allowed programs can be told by an option to run another program (`tar
//! --checkpoint-action=exec=…`, `rg --pre`, `find -exec`, `sort --compress-program`, `git -c
//! core.pager=…`, `zip -TT`): those options are refused per program, as is anything that would
//! write into `.git` (git configuration and hooks run commands). The checks are lexical, on the
//! argv that will run (no shell parses it again), so quoting cannot hide an option.

use crate::error::ToolError;
use crate::permission::{Grants, Permission};

/// Programs that inspect or manage files without running project code.
pub const INSPECT: &[&str] = &[
    "ls",
    "cat",
    "head",
    "tail",
    "wc",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "find",
    "echo",
    "printf",
    "pwd",
    "date",
    "sort",
    "uniq",
    "cut",
    "tr",
    "diff",
    "cmp",
    "file",
    "stat",
    "du",
    "df",
    "tree",
    "which",
    "basename",
    "dirname",
    "realpath",
    "sha256sum",
    "sha1sum",
    "md5sum",
    "true",
    "false",
    "test",
    "touch",
    "mkdir",
    "rmdir",
    "cp",
    "mv",
    "rm",
    "chmod",
    "ln",
    "tar",
    "gzip",
    "gunzip",
    "zip",
    "unzip",
    "jq",
    "git",
    "rustfmt",
    "gofmt",
    "ruff",
    "black",
];

/// Interpreters and build tools: they execute code from the project (setup.py, build.rs,
/// package.json scripts, Makefiles, plugins), so they need the `execute` permission.
pub const RUNNERS: &[&str] = &[
    "cargo", "rustc", "python", "python3", "pip", "pip3", "pytest", "mypy", "node", "npm", "npx",
    "pnpm", "yarn", "tsc", "eslint", "prettier", "go", "make", "java", "javac", "mvn", "gradle",
];

/// Programs that change files and need the write permission (A4).
pub const NEED_WRITE: &[&str] = &["cp", "mv", "rm", "mkdir", "chmod", "touch", "rmdir", "ln"];

/// git subcommands that run other programs or rewrite configuration.
const GIT_REFUSED: &[&str] = &[
    "config",
    "filter-branch",
    "difftool",
    "mergetool",
    "submodule",
    "bisect",
    "hook",
    "daemon",
    "instaweb",
    "credential",
    "remote-ext",
    "upload-pack",
    "receive-pack",
    "shell",
];

fn refused(program: &str, arg: &str, why: &str) -> ToolError {
    ToolError::Refused(format!("'{program} {arg}' refused: {why}"))
}

/// Whether `arg` is the long option `name` (alone or `name=value`) or an unambiguous prefix
/// GNU getopt would accept (`--to-com` for `--to-command`).
fn long_option(arg: &str, name: &str) -> bool {
    let key = arg.split('=').next().unwrap_or(arg);
    key.len() >= 4 && key.starts_with("--") && name.starts_with(key)
}

/// True when a short-option cluster (`-xzvf`, or tar's dash-less first word) holds `letter`.
fn short_cluster_has(arg: &str, letter: char) -> bool {
    arg.strip_prefix('-')
        .filter(|rest| !rest.starts_with('-'))
        .is_some_and(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .any(|c| c == letter)
        })
}

fn is_inside_git_dir(arg: &str) -> bool {
    let value = arg.split_once('=').map_or(arg, |(_, v)| v);
    std::path::Path::new(value)
        .components()
        .any(|c| c.as_os_str() == ".git")
}

fn check_tar(args: &[String]) -> Result<(), ToolError> {
    const EXEC: &[&str] = &[
        "--checkpoint-action",
        "--to-command",
        "--use-compress-program",
        "--info-script",
        "--new-volume-script",
        "--rsh-command",
        "--rmt-command",
    ];
    for (i, a) in args.iter().enumerate() {
        if EXEC.iter().any(|o| long_option(a, o)) {
            return Err(refused("tar", a, "the option runs a program"));
        }
        // Old-style first word (`xIf`) and short clusters: -I runs a compressor, -F a script.
        let cluster = if i == 0 && !a.starts_with('-') {
            format!("-{a}")
        } else {
            a.clone()
        };
        if short_cluster_has(&cluster, 'I') || short_cluster_has(&cluster, 'F') {
            return Err(refused("tar", a, "-I and -F run a program"));
        }
    }
    Ok(())
}

fn check_git(args: &[String]) -> Result<(), ToolError> {
    // The subcommand: the first argument that is neither an option nor the value of one of
    // git's global options that take a separate value.
    let mut sub = None;
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if matches!(
            a.as_str(),
            "-C" | "--git-dir" | "--work-tree" | "--namespace"
        ) {
            skip = true;
        } else if !a.starts_with('-') {
            sub = Some(a.as_str());
            break;
        }
    }
    for a in args {
        if a == "-c" || long_option(a, "--config-env") || long_option(a, "--exec-path") {
            return Err(refused(
                "git",
                a,
                "configuration from the command line can run programs",
            ));
        }
        if long_option(a, "--output") || long_option(a, "--open-files-in-pager") || a == "-O" {
            return Err(refused(
                "git",
                a,
                "the option writes files or starts a pager",
            ));
        }
        if a.starts_with("--upload-pack")
            || a.starts_with("--receive-pack")
            || long_option(a, "--exec")
            || (sub == Some("rebase") && a == "-x")
        {
            return Err(refused("git", a, "the option runs a program"));
        }
    }
    if let Some(s) = sub
        && GIT_REFUSED.contains(&s)
    {
        return Err(refused(
            "git",
            s,
            "this subcommand runs programs or changes configuration (use the git tools)",
        ));
    }
    Ok(())
}

fn check_find(args: &[String], grants: Grants) -> Result<(), ToolError> {
    for a in args {
        if matches!(a.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            return Err(refused("find", a, "the action runs a program"));
        }
        if matches!(a.as_str(), "-fprint" | "-fprint0" | "-fprintf" | "-fls") {
            return Err(refused("find", a, "the action writes files"));
        }
        if a == "-delete" && !grants.contains(Permission::Write) {
            return Err(refused("find", a, "deleting needs the write permission"));
        }
    }
    Ok(())
}

/// Checks `program` with `args` for a caller holding `grants`; `extra` is the operator's
/// `GATHERING_SHELL_ALLOW` (treated as runners: the operator vouches for them).
pub fn check(
    program: &str,
    args: &[String],
    grants: Grants,
    extra: &[String],
) -> Result<(), ToolError> {
    let runner = RUNNERS.contains(&program) || extra.iter().any(|e| e == program);
    if !runner && !INSPECT.contains(&program) {
        return Err(ToolError::Refused(format!(
            "command '{program}' is not on the allow-list"
        )));
    }
    if runner && !grants.contains(Permission::Execute) {
        return Err(ToolError::Refused(format!(
            "command '{program}' runs project code and needs the execute permission"
        )));
    }
    if NEED_WRITE.contains(&program) {
        if !grants.contains(Permission::Write) {
            return Err(ToolError::Refused(format!(
                "command '{program}' needs the write permission"
            )));
        }
        if let Some(a) = args.iter().find(|a| is_inside_git_dir(a)) {
            return Err(refused(
                program,
                a,
                "tools do not modify .git (use the git tools)",
            ));
        }
    }
    match program {
        "tar" => check_tar(args),
        "git" => check_git(args),
        "find" => check_find(args, grants),
        "rg" => match args.iter().find(|a| long_option(a, "--pre")) {
            Some(a) => Err(refused("rg", a, "--pre runs a program on every file")),
            None => Ok(()),
        },
        "sort" => match args.iter().find(|a| long_option(a, "--compress-program")) {
            Some(a) => Err(refused("sort", a, "the option runs a program")),
            None => Ok(()),
        },
        "zip" => match args
            .iter()
            .find(|a| a.as_str() == "-TT" || long_option(a, "--unzip-command"))
        {
            Some(a) => Err(refused("zip", a, "the option runs a program")),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> (String, Vec<String>) {
        let mut w = shlex::split(line).unwrap();
        let p = w.remove(0);
        (p, w)
    }

    fn verdict(line: &str, grants: Grants) -> Result<(), ToolError> {
        let (p, a) = args(line);
        check(&p, &a, grants, &[])
    }

    #[test]
    fn option_based_execution_is_refused_per_program() {
        let all = Grants::all();
        for line in [
            "tar --checkpoint=1 --checkpoint-action=exec=sh x.tar",
            "tar -c --to-command='sh -c id' -f x.tar .",
            "tar --use-compress-program=./evil -cf x.tar .",
            "tar -cIevil -f x.tar .",
            "tar xIf ./evil x.tar",
            "tar --to-com=id -xf x.tar",
            "rg --pre ./evil pattern",
            "rg --pre=./evil pattern",
            "find . -exec rm {} ;",
            "find . -execdir sh ;",
            "find . -fprint .git/config",
            "git -c core.pager=sh log",
            "git config core.fsmonitor ./evil",
            "git -C sub config core.pager ./evil",
            "git log --output=.git/config",
            "git grep -O hello",
            "git rebase -x ./evil main",
            "git submodule foreach ./evil",
            "git difftool",
            "sort --compress-program=./evil big.txt",
            "zip -T -TT ./evil out.zip f",
            "cp evil .git/hooks/pre-commit",
            "ln -s ../x .git/config",
        ] {
            assert!(verdict(line, all).is_err(), "{line} passed");
        }
    }

    #[test]
    fn interpreters_and_build_tools_need_execute() {
        let no_exec = Grants::of(&[Permission::Read, Permission::Write]);
        for line in [
            "python3 script.py",
            "node app.js",
            "npx something",
            "make",
            "cargo build",
            "npm test",
        ] {
            assert!(
                verdict(line, no_exec).is_err(),
                "{line} passed without execute"
            );
            assert!(
                verdict(line, Grants::all()).is_ok(),
                "{line} refused with execute"
            );
        }
        for line in [
            "ls -la",
            "grep -rn main src",
            "git status",
            "git log --oneline",
            "tar -czf out.tgz src",
            "find . -name '*.rs'",
            "rg main",
            "sort a.txt",
        ] {
            assert!(verdict(line, no_exec).is_ok(), "{line} refused");
        }
        assert!(verdict("rm x", Grants::of(&[Permission::Read])).is_err());
        assert!(
            verdict("sh -x", Grants::all()).is_err(),
            "not on the allow-list"
        );
    }
}
