//! The `docs` skill: the outline of a project's documentation (Markdown headings, outside code
//! fences) and the documentation written in its code (doc comments attached to the item that
//! follows them): Rust `///` and `//!`, Python docstrings, `/** … */` blocks (JavaScript,
//! TypeScript, Java, C, C++), Go's comment lines before a declaration.
//!
//! Read-only; paths confined to the project root; files of at most [`MAX_FILE_BYTES`], at most
//! [`MAX_FILES`] files per folder.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{parse, walk};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "docs";
const MAX_FILES: usize = 500;
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_ITEMS: usize = 5000;

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    let path = json!({"type": "string", "minLength": 1, "maxLength": 4096});
    reg.register(
        ToolDefinition::new("docs_outline", SKILL, Category::Utility, "Outline of the documentation: the headings of a Markdown file, or of every Markdown file in a folder; for a code file, its documented items")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {"path": path},
                "additionalProperties": false,
            }))
            .output("{files[{path, title, headings[{level, text, line}] | items[{kind, name, line}]}], truncated}"),
        docs_outline,
    )?;
    reg.register(
        ToolDefinition::new("docs_extract", SKILL, Category::Utility, "Documentation written in code: module docs and the doc comments of functions, types and classes of a file or folder (Rust, Python, JavaScript/TypeScript, Java, C/C++, Go)")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": path,
                    "undocumented": {"type": "boolean", "description": "also list public items without documentation"},
                },
                "additionalProperties": false,
            }))
            .output("{files[{path, language, module_doc, items[{kind, name, line, doc}]}], documented, undocumented, truncated}"),
        docs_extract,
    )?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Rust,
    Python,
    Block,
    Go,
}

fn style(p: &Path) -> Option<Style> {
    Some(match walk::extension(p).as_str() {
        "rs" => Style::Rust,
        "py" => Style::Python,
        "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "java" | "c" | "h" | "cpp" | "cc" | "hpp"
        | "kt" | "swift" | "php" => Style::Block,
        "go" => Style::Go,
        _ => return None,
    })
}

fn is_markdown(p: &Path) -> bool {
    matches!(walk::extension(p).as_str(), "md" | "markdown" | "mdx")
}

/// ATX headings outside fenced code blocks.
pub(crate) fn headings(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        for marker in ["```", "~~~"] {
            if t.starts_with(marker) {
                fence = match fence {
                    None => Some(marker),
                    Some(m) if m == marker => None,
                    other => other,
                };
            }
        }
        if fence.is_some() || line.starts_with("    ") {
            continue;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && t[level..].starts_with([' ', '\t']) {
            let text = t[level..].trim().trim_end_matches('#').trim();
            out.push(json!({"level": level, "text": text, "line": n + 1}));
        }
    }
    out
}

static DECL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(fn|struct|enum|trait|type|mod|union|macro_rules!|class|def|function|interface|func|const|let|var|static|impl|package|namespace)\s+(?:\([^)]*\)\s*)?([A-Za-z_$][A-Za-z0-9_$]*)")
        .unwrap_or_else(|e| panic!("declaration pattern: {e}"))
});

/// Kind and name of the declaration on `line`, when it holds one.
fn declaration(line: &str) -> Option<(String, String)> {
    let c = DECL.captures(line)?;
    let kind = c.get(1)?.as_str().trim_end_matches('!').to_owned();
    Some((kind, c.get(2)?.as_str().to_owned()))
}

fn is_public(style: Style, line: &str) -> bool {
    let t = line.trim_start();
    match style {
        Style::Rust => t.starts_with("pub "),
        Style::Python => {
            !t.starts_with("def _")
                && !t.starts_with("class _")
                && (t.starts_with("def ") || t.starts_with("class ") || t.starts_with("async def "))
        }
        Style::Go => {
            declaration(t).is_some_and(|(_, n)| n.starts_with(|c: char| c.is_ascii_uppercase()))
        }
        Style::Block => t.starts_with("export ") || t.starts_with("public "),
    }
}

struct Extracted {
    module_doc: Option<String>,
    items: Vec<Value>,
    undocumented: Vec<Value>,
}

/// Doc comments and the items they document.
fn extract(style: Style, text: &str) -> Extracted {
    let lines: Vec<&str> = text.lines().collect();
    let mut module = Vec::new();
    let mut items = Vec::new();
    let mut undocumented = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let t = raw.trim();
        match style {
            Style::Rust if t.starts_with("//!") => {
                module.push(t[3..].strip_prefix(' ').unwrap_or(&t[3..]).to_owned());
                i += 1;
                continue;
            }
            Style::Rust if t.starts_with("///") => {
                pending.push(t[3..].strip_prefix(' ').unwrap_or(&t[3..]).to_owned());
                i += 1;
                continue;
            }
            Style::Go if t.starts_with("//") => {
                pending.push(t[2..].strip_prefix(' ').unwrap_or(&t[2..]).to_owned());
                i += 1;
                continue;
            }
            Style::Block if t.starts_with("/**") => {
                let mut j = i;
                let mut body = Vec::new();
                loop {
                    let l = lines[j].trim();
                    let l = l.trim_start_matches("/**").trim_end_matches("*/").trim();
                    let l = l.strip_prefix('*').map_or(l, str::trim);
                    if !l.is_empty() || !body.is_empty() {
                        body.push(l.to_owned());
                    }
                    if lines[j].contains("*/") || j + 1 == lines.len() {
                        break;
                    }
                    j += 1;
                }
                pending = body;
                i = j + 1;
                continue;
            }
            Style::Python if i == first_code_line(&lines) && docstring_start(t).is_some() => {
                let (doc, end) = docstring(&lines, i);
                module.push(doc);
                i = end + 1;
                continue;
            }
            _ => {}
        }
        if t.is_empty() {
            // A blank line ends a Go comment that is not attached to a declaration.
            if style == Style::Go {
                pending.clear();
            }
            i += 1;
            continue;
        }
        if t.starts_with("#[") || t.starts_with('@') {
            // Attributes and decorators sit between a doc comment and its item.
            i += 1;
            continue;
        }
        let decl = declaration(t);
        let mut doc = std::mem::take(&mut pending).join("\n").trim().to_owned();
        if style == Style::Python
            && decl.is_some()
            && let Some(next) = lines.get(i + 1)
            && docstring_start(next.trim()).is_some()
        {
            let (d, end) = docstring(&lines, i + 1);
            doc = d;
            if let Some((kind, name)) = decl {
                items.push(json!({"kind": kind, "name": name, "line": i + 1, "doc": doc}));
            }
            i = end + 1;
            continue;
        }
        if let Some((kind, name)) = decl {
            if !doc.is_empty() {
                items.push(json!({"kind": kind, "name": name, "line": i + 1, "doc": doc}));
            } else if is_public(style, raw) && kind != "impl" && kind != "package" {
                undocumented.push(json!({"kind": kind, "name": name, "line": i + 1}));
            }
        }
        if items.len() >= MAX_ITEMS {
            break;
        }
        i += 1;
    }
    let module_doc = Some(module.join("\n").trim().to_owned()).filter(|s| !s.is_empty());
    Extracted {
        module_doc,
        items,
        undocumented,
    }
}

fn first_code_line(lines: &[&str]) -> usize {
    lines
        .iter()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .unwrap_or(usize::MAX)
}

fn docstring_start(t: &str) -> Option<&'static str> {
    let t = t.trim_start_matches(['r', 'R', 'u', 'U']);
    ["\"\"\"", "'''"].into_iter().find(|q| t.starts_with(q))
}

/// The docstring that opens on line `start`, and the line it closes on.
fn docstring(lines: &[&str], start: usize) -> (String, usize) {
    let first = lines[start].trim();
    let quote = docstring_start(first).unwrap_or("\"\"\"");
    let after = &first[first.find(quote).map_or(0, |p| p + 3)..];
    if let Some(end) = after.find(quote) {
        return (after[..end].trim().to_owned(), start);
    }
    let mut body = vec![after.trim().to_owned()];
    let mut j = start + 1;
    while j < lines.len() {
        if let Some(end) = lines[j].find(quote) {
            body.push(lines[j][..end].trim().to_owned());
            break;
        }
        body.push(lines[j].trim().to_owned());
        j += 1;
    }
    (body.join("\n").trim().to_owned(), j.min(lines.len() - 1))
}

fn read_small(p: &Path) -> Option<String> {
    if std::fs::metadata(p).ok()?.len() > MAX_FILE_BYTES {
        return None;
    }
    std::fs::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[derive(Deserialize)]
struct PathInput {
    path: Option<String>,
    undocumented: Option<bool>,
}

async fn docs_outline(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: PathInput = parse(input)?;
    let root = ctx.root()?.clone();
    let start = root
        .resolve_existing(i.path.as_deref().unwrap_or("."))
        .await?;
    let (files, truncated) = tokio::task::spawn_blocking(move || {
        let (paths, truncated) = if start.is_file() {
            (vec![start.clone()], false)
        } else {
            walk::files(&start, MAX_FILES, is_markdown)
        };
        let files: Vec<Value> = paths
            .iter()
            .filter_map(|p| {
                let text = read_small(p)?;
                let rel = root.relative(p);
                if is_markdown(p) || style(p).is_none() {
                    let h = headings(&text);
                    let title = h.iter().find(|h| h["level"] == 1).map(|h| h["text"].clone());
                    Some(json!({"path": rel, "title": title, "headings": h}))
                } else {
                    let e = extract(style(p)?, &text);
                    let items: Vec<Value> = e
                        .items
                        .iter()
                        .map(|it| json!({"kind": it["kind"], "name": it["name"], "line": it["line"]}))
                        .collect();
                    Some(json!({"path": rel, "title": e.module_doc.and_then(|d| d.lines().next().map(str::to_owned)), "items": items}))
                }
            })
            .collect();
        (files, truncated)
    })
    .await
    .map_err(|e| ToolError::Failed(e.to_string()))?;
    Ok(ToolOutput::ok(
        format!("Outline of {} file(s)", files.len()),
        json!({"files": files, "truncated": truncated}),
    ))
}

async fn docs_extract(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: PathInput = parse(input)?;
    let with_undocumented = i.undocumented.unwrap_or(false);
    let root = ctx.root()?.clone();
    let start = root
        .resolve_existing(i.path.as_deref().unwrap_or("."))
        .await?;
    let data = tokio::task::spawn_blocking(move || {
        let (paths, truncated) = if start.is_file() {
            (vec![start.clone()], false)
        } else {
            walk::files(&start, MAX_FILES, |p| style(p).is_some())
        };
        let (mut documented, mut missing) = (0, 0);
        let mut files = Vec::new();
        for p in &paths {
            let (Some(s), Some(text)) = (style(p), read_small(p)) else {
                continue;
            };
            let e = extract(s, &text);
            documented += e.items.len();
            missing += e.undocumented.len();
            let nothing_to_show = e.items.is_empty()
                && e.module_doc.is_none()
                && (!with_undocumented || e.undocumented.is_empty());
            if nothing_to_show {
                continue;
            }
            let mut f = json!({
                "path": root.relative(p),
                "language": walk::extension(p),
                "module_doc": e.module_doc,
                "items": e.items,
            });
            if with_undocumented {
                f["undocumented"] = json!(e.undocumented);
            }
            files.push(f);
        }
        json!({"files": files, "documented": documented, "undocumented": missing, "truncated": truncated})
    })
    .await
    .map_err(|e| ToolError::Failed(e.to_string()))?;
    Ok(ToolOutput::ok(
        format!(
            "{} documented item(s), {} public item(s) without docs",
            data["documented"], data["undocumented"]
        ),
        data,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_headings_skip_code() {
        let h = headings(
            "# Title\n\ntext\n## Part one ##\n```\n# not a heading\n```\n###no space\n### Three\n",
        );
        let texts: Vec<&str> = h.iter().map(|h| h["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["Title", "Part one", "Three"]);
        assert_eq!(h[2]["line"], 9);
    }

    #[test]
    fn doc_comments_per_language() {
        let rs = extract(
            Style::Rust,
            "//! The crate.\n\n/// Adds.\n/// Two numbers.\n#[inline]\npub fn add(a: i32) {}\npub struct Bare;\n",
        );
        assert_eq!(rs.module_doc.as_deref(), Some("The crate."));
        assert_eq!(rs.items[0]["name"], "add");
        assert_eq!(rs.items[0]["doc"], "Adds.\nTwo numbers.");
        assert_eq!(rs.undocumented[0]["name"], "Bare");
        let py = extract(
            Style::Python,
            "\"\"\"Module doc.\"\"\"\nimport os\n\ndef f(x):\n    \"\"\"Does f.\n\n    More.\n    \"\"\"\n    return x\n\nclass C:\n    pass\n",
        );
        assert_eq!(py.module_doc.as_deref(), Some("Module doc."));
        assert_eq!(py.items[0]["doc"], "Does f.\n\nMore.");
        assert_eq!(py.undocumented[0]["name"], "C");
        let js = extract(
            Style::Block,
            "/**\n * Greets.\n * @param n name\n */\nexport function greet(n) {}\n",
        );
        assert_eq!(js.items[0]["name"], "greet");
        assert_eq!(js.items[0]["doc"], "Greets.\n@param n name");
        let go = extract(
            Style::Go,
            "// Package m does m.\npackage m\n\n// Run runs.\nfunc (s *S) Run() {}\n",
        );
        assert_eq!(go.items[1]["name"], "Run");
        assert_eq!(go.items[1]["doc"], "Run runs.");
    }
}
