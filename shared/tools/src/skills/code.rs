//! The `code` skill: run Python, JavaScript (Node) or bash snippets, and `code_analyze`.
//!
//! A snippet runs in a child process whose working directory is the project root, fed on
//! stdin (never through a shell command line), with a clean environment and limits set before
//! exec: CPU seconds (RLIMIT_CPU), memory (RLIMIT_AS; RLIMIT_DATA plus V8's heap flag for
//! Node, whose address-space reservations do not fit under RLIMIT_AS), file size and open
//! files, then a wall-clock limit and capped output. bash snippets are also checked against the
//! destructive patterns of the shell skill. This is resource limiting, not a sandbox: the
//! snippet runs with the service's user, which is why the tools are dangerous (confirmation)
//! and need the execute permission.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::shell::{Scope, blocked};
use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::process::{self, ExecSpec, ResourceLimits};
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;

const SKILL: &str = "code";

#[derive(Clone, Copy)]
enum Lang {
    Python,
    JavaScript,
    Bash,
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    let limits = &svc.config.code;
    let schema = json!({
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 1, "maxLength": limits.max_code_bytes},
            "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": limits.max_timeout.as_secs()},
            "args": {"type": "array", "items": {"type": "string", "maxLength": 4096}, "maxItems": 64},
        },
        "required": ["code"],
        "additionalProperties": false,
    });
    let out = "{language, exit_code, stdout, stderr, stdout_truncated, stderr_truncated, timed_out, duration_ms}";
    for (name, lang, desc) in [
        (
            "python_exec",
            Lang::Python,
            "Run a Python 3 snippet in the project root (CPU, memory, time and output limits)",
        ),
        (
            "javascript_exec",
            Lang::JavaScript,
            "Run a JavaScript snippet with Node.js in the project root (CPU, memory, time and output limits)",
        ),
        (
            "bash_exec",
            Lang::Bash,
            "Run a bash script in the project root (destructive patterns refused; CPU, memory, time and output limits)",
        ),
    ] {
        reg.register(
            ToolDefinition::new(name, SKILL, Category::CodeExecution, desc)
                .permissions(&[Permission::Execute])
                .dangerous(ConfirmationType::User)
                .timeout(limits.max_timeout + Duration::from_secs(5))
                .schema(schema.clone())
                .output(out),
            with(svc.clone(), move |svc, ctx, input| {
                run(svc, ctx, input, lang)
            }),
        )?;
    }
    reg.register(
        ToolDefinition::new("code_analyze", SKILL, Category::CodeExecution, "Static metrics of a piece of code: lines, comments, functions, classes, imports, nesting, complexity")
            .schema(json!({
                "type": "object",
                "properties": {
                    "code": {"type": "string", "maxLength": 2 * 1024 * 1024},
                    "language": {"type": "string", "enum": ["python", "javascript", "typescript", "rust", "go", "java", "bash", "c", "cpp"]},
                },
                "required": ["code", "language"],
                "additionalProperties": false,
            }))
            .output("{language, lines, code_lines, blank_lines, comment_lines, functions, classes, imports, max_nesting, complexity}"),
        code_analyze,
    )?;
    Ok(())
}

#[derive(Deserialize)]
struct RunInput {
    code: String,
    timeout_seconds: Option<u64>,
    #[serde(default)]
    args: Vec<String>,
}

async fn run(
    svc: Arc<Services>,
    ctx: CallContext,
    input: Value,
    lang: Lang,
) -> Result<ToolOutput, ToolError> {
    let i: RunInput = parse(input)?;
    let root = ctx.root()?;
    let limits = &svc.config.code;
    if matches!(lang, Lang::Bash)
        && let Some(name) = blocked(&i.code, Scope::All)
    {
        return Err(ToolError::Refused(format!("script blocked: {name}")));
    }
    let mem_mb = limits.memory_bytes / (1024 * 1024);
    let (program, language, mut args, rlimits) = match lang {
        Lang::Python => (
            "python3",
            "python",
            // -I: isolated mode (no user site-packages, no PYTHON* variables); `-` reads stdin.
            vec!["-I".to_owned(), "-".to_owned()],
            ResourceLimits {
                address_space_bytes: Some(limits.memory_bytes),
                ..ResourceLimits::default()
            },
        ),
        Lang::JavaScript => (
            "node",
            "javascript",
            vec![
                format!("--max-old-space-size={}", (mem_mb / 2).max(16)),
                "-".to_owned(),
            ],
            ResourceLimits {
                data_bytes: Some(limits.memory_bytes),
                ..ResourceLimits::default()
            },
        ),
        Lang::Bash => (
            "bash",
            "bash",
            vec![
                "--noprofile".to_owned(),
                "--norc".to_owned(),
                "-s".to_owned(),
                "--".to_owned(),
            ],
            ResourceLimits {
                address_space_bytes: Some(limits.memory_bytes),
                ..ResourceLimits::default()
            },
        ),
    };
    args.extend(i.args.iter().cloned());
    let wall = i
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(limits.default_timeout)
        .min(limits.max_timeout);
    let mut spec = ExecSpec::new(program, args, root.path().to_path_buf());
    spec.stdin = Some(i.code.into_bytes());
    spec.wall = wall;
    spec.max_output = limits.max_output;
    spec.limits = ResourceLimits {
        cpu_seconds: Some(limits.cpu_seconds),
        file_size_bytes: Some(64 * 1024 * 1024),
        open_files: Some(256),
        ..rlimits
    };
    let out = process::run(spec).await?;
    let message = if out.timed_out {
        format!(
            "{language} snippet timed out after {} s and was killed",
            wall.as_secs()
        )
    } else {
        match (out.exit_code, out.signal) {
            (Some(0), _) => format!("{language} snippet ran"),
            (Some(c), _) => format!("{language} snippet exited with {c}"),
            (None, Some(24)) => format!(
                "{language} snippet exceeded its CPU limit of {} s",
                limits.cpu_seconds
            ),
            (None, Some(s)) => format!("{language} snippet killed by signal {s}"),
            (None, None) => format!("{language} snippet ended"),
        }
    };
    let success = out.succeeded();
    let mut data = serde_json::to_value(&out).unwrap_or(Value::Null);
    data["language"] = json!(language);
    Ok(if success {
        ToolOutput::ok(message, data)
    } else {
        ToolOutput::failed(message, data)
    })
}

#[derive(Deserialize)]
struct AnalyzeInput {
    code: String,
    language: String,
}

async fn code_analyze(_ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: AnalyzeInput = parse(input)?;
    let metrics = tokio::task::spawn_blocking(move || analyze(&i.code, &i.language))
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    let summary = format!(
        "{} lines, {} function(s), {} class(es), complexity {}",
        metrics["lines"], metrics["functions"], metrics["classes"], metrics["complexity"]
    );
    Ok(ToolOutput::ok(summary, metrics))
}

/// Line-based metrics: good enough to size and compare code without a parser per language.
pub fn analyze(code: &str, language: &str) -> Value {
    let hash_comments = matches!(language, "python" | "bash");
    let branch_words = branch_words(language);
    let mut c = Counts {
        complexity: 1,
        ..Counts::default()
    };
    for raw in code.lines() {
        let line = raw.trim();
        if line.is_empty() {
            c.blank += 1;
            continue;
        }
        if c.skip_comment(line, hash_comments) {
            continue;
        }
        c.declarations(language, raw, line);
        c.complexity += branch_words
            .iter()
            .map(|w| line.matches(w).count())
            .sum::<usize>();
        if !hash_comments {
            c.braces(line);
        }
    }
    let lines = code.lines().count();
    json!({
        "language": language,
        "lines": lines,
        "code_lines": lines - c.blank - c.comment,
        "blank_lines": c.blank,
        "comment_lines": c.comment,
        "functions": c.functions,
        "classes": c.classes,
        "imports": c.imports,
        "max_nesting": c.max_nesting,
        "complexity": c.complexity,
    })
}

/// Words and operators that open a branch, for the complexity count.
fn branch_words(language: &str) -> &'static [&'static str] {
    match language {
        "python" => &[
            "if ", "elif ", "for ", "while ", "except", " and ", " or ", "case ",
        ],
        "bash" => &["if ", "elif ", "for ", "while ", "case ", "&&", "||"],
        _ => &[
            "if ", "if(", "for ", "for(", "while ", "while(", "case ", "catch", "&&", "||", "?",
            "match ",
        ],
    }
}

/// How a line of a brace language starts when it declares a function, a type, or an import.
const FUNCTION_STARTS: &[&str] = &[
    "fn ",
    "pub fn ",
    "async fn ",
    "pub async fn ",
    "pub(crate) fn ",
    "function ",
    "async function ",
    "func ",
];
const TYPE_STARTS: &[&str] = &[
    "class ",
    "struct ",
    "pub struct ",
    "enum ",
    "pub enum ",
    "interface ",
    "export class ",
    "trait ",
    "pub trait ",
    "type ",
];
const IMPORT_STARTS: &[&str] = &["import ", "use ", "pub use ", "#include", "package "];

/// What `analyze` counts, line by line.
#[derive(Default)]
struct Counts {
    blank: usize,
    comment: usize,
    functions: usize,
    classes: usize,
    imports: usize,
    complexity: usize,
    max_nesting: usize,
    /// Open braces so far.
    depth: i64,
    in_block_comment: bool,
}

impl Counts {
    /// Counts a comment line (`#` in Python and Bash; `//` and `/* … */` elsewhere); whether the
    /// line was one.
    fn skip_comment(&mut self, line: &str, hash_comments: bool) -> bool {
        if self.in_block_comment {
            self.comment += 1;
            if line.contains("*/") {
                self.in_block_comment = false;
            }
            return true;
        }
        if hash_comments && line.starts_with('#') {
            self.comment += 1;
            return true;
        }
        if !hash_comments && line.starts_with("//") {
            self.comment += 1;
            return true;
        }
        if !hash_comments && line.starts_with("/*") {
            self.comment += 1;
            self.in_block_comment = !line.contains("*/");
            return true;
        }
        false
    }

    /// Counts the functions, types and imports a line declares; Python's nesting is its
    /// indentation.
    fn declarations(&mut self, language: &str, raw: &str, line: &str) {
        let starts = |prefixes: &[&str]| prefixes.iter().any(|p| line.starts_with(p));
        match language {
            "python" => {
                if starts(&["def ", "async def "]) {
                    self.functions += 1;
                }
                if starts(&["class "]) {
                    self.classes += 1;
                }
                if starts(&["import ", "from "]) {
                    self.imports += 1;
                }
                let indent = raw.len() - raw.trim_start().len();
                self.max_nesting = self.max_nesting.max(indent / 4);
            }
            "bash" => {
                if line.contains("()") && line.ends_with('{') || starts(&["function "]) {
                    self.functions += 1;
                }
                if starts(&["source ", ". "]) {
                    self.imports += 1;
                }
            }
            _ => {
                if starts(FUNCTION_STARTS) || line.contains("=> {") {
                    self.functions += 1;
                }
                if starts(TYPE_STARTS) {
                    self.classes += 1;
                }
                if starts(IMPORT_STARTS) || line.contains("require(") {
                    self.imports += 1;
                }
            }
        }
    }

    /// Brace languages' nesting: the deepest the braces go.
    fn braces(&mut self, line: &str) {
        for ch in line.chars() {
            match ch {
                '{' => {
                    self.depth += 1;
                    self.max_nesting = self.max_nesting.max(self.depth.max(0) as usize);
                }
                '}' => self.depth -= 1,
                _ => {}
            }
        }
    }
}
