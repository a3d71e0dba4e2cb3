//! The `analysis` skill: code metrics of a project's files per language (lines, code, comments,
//! blank lines, functions, a branch-count complexity estimate: the line-based measure of
//! [`super::code::analyze`]), and the dependencies its manifests declare (Cargo.toml,
//! package.json, requirements.txt, pyproject.toml, go.mod; TOML parsed with the `toml` crate).
//!
//! Read-only; paths confined to the project root; at most [`MAX_FILES`] files of at most
//! [`MAX_FILE_BYTES`] each are measured (larger files are counted as skipped).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::code::analyze;
use super::{parse, walk};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "analysis";
const MAX_FILES: usize = 5000;
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_MANIFESTS: usize = 200;
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    let path = json!({"type": "string", "minLength": 1, "maxLength": 4096});
    reg.register(
        ToolDefinition::new("analysis_metrics", SKILL, Category::CodeExecution, "Code metrics of a file or folder of the project, per language: files, lines, code, comments, blank, functions, complexity estimate; the most complex files")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": path,
                    "top": {"type": "integer", "minimum": 0, "maximum": 100},
                },
                "additionalProperties": false,
            }))
            .output("{path, languages{lang: {files, lines, code_lines, comment_lines, blank_lines, functions, complexity}}, totals, most_complex[{path, language, complexity, lines}], skipped_large, truncated}"),
        analysis_metrics,
    )?;
    reg.register(
        ToolDefinition::new("analysis_dependencies", SKILL, Category::CodeExecution, "Dependencies the project's manifests declare (Cargo.toml, package.json, requirements.txt, pyproject.toml, go.mod), in a folder and below")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {"path": path},
                "additionalProperties": false,
            }))
            .output("{manifests[{file, ecosystem, dependencies[{name, version, kind}], error}], total}"),
        analysis_dependencies,
    )?;
    Ok(())
}

/// The language `code::analyze` knows a file as, by extension.
fn language(p: &Path) -> Option<&'static str> {
    Some(match walk::extension(p).as_str() {
        "py" => "python",
        "js" | "jsx" | "mjs" | "cjs" => "javascript",
        "ts" | "tsx" => "typescript",
        "rs" => "rust",
        "go" => "go",
        "java" => "java",
        "sh" | "bash" => "bash",
        "c" | "h" => "c",
        "cpp" | "cc" | "cxx" | "hpp" | "hh" => "cpp",
        _ => return None,
    })
}

#[derive(Deserialize)]
struct MetricsInput {
    path: Option<String>,
    top: Option<usize>,
}

const FIELDS: [&str; 6] = [
    "lines",
    "code_lines",
    "comment_lines",
    "blank_lines",
    "functions",
    "complexity",
];

async fn analysis_metrics(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: MetricsInput = parse(input)?;
    let root = ctx.root()?.clone();
    let start = root
        .resolve_existing(i.path.as_deref().unwrap_or("."))
        .await?;
    let top = i.top.unwrap_or(10);
    let data = tokio::task::spawn_blocking(move || {
        let (files, truncated) = if start.is_file() {
            (vec![start.clone()], false)
        } else {
            walk::files(&start, MAX_FILES, |p| language(p).is_some())
        };
        let mut langs: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        let mut per_file = Vec::new();
        let mut skipped_large = 0;
        for f in &files {
            let Some(lang) = language(f) else { continue };
            if std::fs::metadata(f).map_or(true, |m| m.len() > MAX_FILE_BYTES) {
                skipped_large += 1;
                continue;
            }
            let Ok(bytes) = std::fs::read(f) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let m = analyze(&text, lang);
            let entry = langs.entry(lang).or_default();
            *entry.entry("files").or_default() += 1;
            for k in FIELDS {
                *entry.entry(k).or_default() += m[k].as_u64().unwrap_or(0);
            }
            per_file.push(json!({
                "path": root.relative(f),
                "language": lang,
                "complexity": m["complexity"],
                "lines": m["lines"],
                "functions": m["functions"],
            }));
        }
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for m in langs.values() {
            for (k, v) in m {
                *totals.entry(k).or_default() += v;
            }
        }
        per_file.sort_by_key(|f| std::cmp::Reverse(f["complexity"].as_u64().unwrap_or(0)));
        per_file.truncate(top);
        json!({
            "path": root.relative(&start),
            "languages": langs,
            "totals": totals,
            "most_complex": per_file,
            "skipped_large": skipped_large,
            "truncated": truncated,
        })
    })
    .await
    .map_err(|e| ToolError::Failed(e.to_string()))?;
    let files = data["totals"]["files"].as_u64().unwrap_or(0);
    let lines = data["totals"]["lines"].as_u64().unwrap_or(0);
    Ok(ToolOutput::ok(
        format!("{files} source file(s), {lines} line(s)"),
        data,
    ))
}

const MANIFESTS: [&str; 5] = [
    "Cargo.toml",
    "package.json",
    "requirements.txt",
    "pyproject.toml",
    "go.mod",
];

#[derive(Deserialize)]
struct DepsInput {
    path: Option<String>,
}

async fn analysis_dependencies(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: DepsInput = parse(input)?;
    let root = ctx.root()?.clone();
    let start = root
        .resolve_existing(i.path.as_deref().unwrap_or("."))
        .await?;
    let manifests = tokio::task::spawn_blocking(move || {
        let (files, _) = if start.is_file() {
            (vec![start.clone()], false)
        } else {
            walk::files(&start, MAX_MANIFESTS, |p| {
                p.file_name()
                    .is_some_and(|n| MANIFESTS.contains(&n.to_string_lossy().as_ref()))
            })
        };
        files
            .iter()
            .map(|f| {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let rel = root.relative(f);
                let text = match std::fs::metadata(f) {
                    Ok(m) if m.len() > MAX_MANIFEST_BYTES => Err("manifest is larger than 1 MiB".to_owned()),
                    _ => std::fs::read_to_string(f).map_err(|e| e.to_string()),
                };
                let parsed = text.and_then(|t| manifest(&name, &t));
                match parsed {
                    Ok((ecosystem, deps)) => json!({"file": rel, "ecosystem": ecosystem, "dependencies": deps}),
                    Err(e) => json!({"file": rel, "ecosystem": Value::Null, "dependencies": [], "error": e}),
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ToolError::Failed(e.to_string()))?;
    let total: usize = manifests
        .iter()
        .map(|m| m["dependencies"].as_array().map_or(0, Vec::len))
        .sum();
    Ok(ToolOutput::ok(
        format!("{total} dependencies in {} manifest(s)", manifests.len()),
        json!({"manifests": manifests, "total": total}),
    ))
}

fn dep(name: &str, version: Option<String>, kind: &str) -> Value {
    json!({"name": name, "version": version, "kind": kind})
}

/// The ecosystem and dependencies of one manifest.
pub(crate) fn manifest(name: &str, text: &str) -> Result<(&'static str, Vec<Value>), String> {
    match name {
        "Cargo.toml" => {
            let doc: toml::Table = toml::from_str(text).map_err(|e| format!("TOML: {e}"))?;
            let mut deps = Vec::new();
            for (section, kind) in [
                ("dependencies", "normal"),
                ("dev-dependencies", "dev"),
                ("build-dependencies", "build"),
            ] {
                cargo_section(doc.get(section), kind, &mut deps);
            }
            if let Some(ws) = doc.get("workspace").and_then(|w| w.get("dependencies")) {
                cargo_section(Some(ws), "workspace", &mut deps);
            }
            Ok(("cargo", deps))
        }
        "package.json" => {
            let v: Value = serde_json::from_str(text).map_err(|e| format!("JSON: {e}"))?;
            let mut deps = Vec::new();
            for (section, kind) in [
                ("dependencies", "normal"),
                ("devDependencies", "dev"),
                ("peerDependencies", "peer"),
                ("optionalDependencies", "optional"),
            ] {
                if let Some(m) = v[section].as_object() {
                    for (n, ver) in m {
                        deps.push(dep(n, ver.as_str().map(str::to_owned), kind));
                    }
                }
            }
            Ok(("npm", deps))
        }
        "requirements.txt" => Ok((
            "pip",
            text.lines()
                .filter_map(|l| pep508(l.split(" #").next().unwrap_or(l)))
                .map(|(n, v)| dep(&n, v, "normal"))
                .collect(),
        )),
        "pyproject.toml" => {
            let doc: toml::Table = toml::from_str(text).map_err(|e| format!("TOML: {e}"))?;
            let mut deps = Vec::new();
            let project = doc.get("project");
            for s in project
                .and_then(|p| p.get("dependencies"))
                .and_then(|d| d.as_array())
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str())
            {
                if let Some((n, v)) = pep508(s) {
                    deps.push(dep(&n, v, "normal"));
                }
            }
            for (group, list) in project
                .and_then(|p| p.get("optional-dependencies"))
                .and_then(|d| d.as_table())
                .into_iter()
                .flatten()
            {
                for s in list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str())
                {
                    if let Some((n, v)) = pep508(s) {
                        deps.push(dep(&n, v, &format!("optional:{group}")));
                    }
                }
            }
            let poetry = doc.get("tool").and_then(|t| t.get("poetry"));
            for (section, kind) in [("dependencies", "normal"), ("dev-dependencies", "dev")] {
                poetry_section(poetry.and_then(|p| p.get(section)), kind, &mut deps);
            }
            for (group, g) in poetry
                .and_then(|p| p.get("group"))
                .and_then(|g| g.as_table())
                .into_iter()
                .flatten()
            {
                poetry_section(g.get("dependencies"), &format!("group:{group}"), &mut deps);
            }
            Ok(("python", deps))
        }
        "go.mod" => {
            let mut deps = Vec::new();
            let mut in_block = false;
            for line in text
                .lines()
                .map(|l| l.split("//").next().unwrap_or("").trim())
            {
                let spec = if in_block {
                    if line == ")" {
                        in_block = false;
                        continue;
                    }
                    line
                } else if line == "require (" {
                    in_block = true;
                    continue;
                } else if let Some(rest) = line.strip_prefix("require ") {
                    rest
                } else {
                    continue;
                };
                let mut parts = spec.split_whitespace();
                if let (Some(n), Some(v)) = (parts.next(), parts.next()) {
                    deps.push(dep(n, Some(v.to_owned()), "normal"));
                }
            }
            Ok(("go", deps))
        }
        other => Err(format!("{other} is not a known manifest")),
    }
}

fn cargo_section(section: Option<&toml::Value>, kind: &str, out: &mut Vec<Value>) {
    for (name, spec) in section.and_then(|s| s.as_table()).into_iter().flatten() {
        let version = match spec {
            toml::Value::String(v) => Some(v.clone()),
            toml::Value::Table(t) => t
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .or_else(|| {
                    t.get("path")
                        .and_then(|p| p.as_str())
                        .map(|p| format!("path:{p}"))
                })
                .or_else(|| {
                    t.get("git")
                        .and_then(|g| g.as_str())
                        .map(|g| format!("git:{g}"))
                })
                .or_else(|| t.get("workspace").map(|_| "workspace".to_owned())),
            _ => None,
        };
        out.push(dep(name, version, kind));
    }
}

fn poetry_section(section: Option<&toml::Value>, kind: &str, out: &mut Vec<Value>) {
    for (name, spec) in section.and_then(|s| s.as_table()).into_iter().flatten() {
        if name == "python" {
            continue;
        }
        let version = match spec {
            toml::Value::String(v) => Some(v.clone()),
            toml::Value::Table(t) => t.get("version").and_then(|v| v.as_str()).map(str::to_owned),
            _ => None,
        };
        out.push(dep(name, version, kind));
    }
}

/// Name and version constraint of a PEP 508 requirement (`requests[socks]>=2.0; python_version
/// < "3.8"`); options (`-r`, `--index-url`), URLs and blank lines give `None`.
fn pep508(line: &str) -> Option<(String, Option<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('-') || line.contains("://") {
        return None;
    }
    let req = line.split(';').next()?.trim();
    let end = req
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(req.len());
    let name = &req[..end];
    if name.is_empty() {
        return None;
    }
    let rest = req[end..].trim();
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']').map_or("", |(_, after)| after).trim(),
        None => rest,
    };
    let version =
        (!rest.is_empty()).then(|| rest.trim_matches(|c| c == '(' || c == ')').to_owned());
    Some((name.to_owned(), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep508_requirements() {
        assert_eq!(
            pep508("requests[socks] >= 2.0 ; python_version<'3.8'"),
            Some(("requests".into(), Some(">= 2.0".into())))
        );
        assert_eq!(pep508("flask"), Some(("flask".into(), None)));
        assert_eq!(pep508("-r other.txt"), None);
        assert_eq!(pep508("# comment"), None);
    }

    #[test]
    fn manifests_parse() {
        let (eco, deps) = manifest(
            "Cargo.toml",
            "[package]\nname='x'\n[dependencies]\nserde = { version = \"1\", features = [\"derive\"] }\nlocal = { path = \"../l\" }\nanyhow = \"1.0\"\n[dev-dependencies]\ntokio = { workspace = true }\n",
        )
        .unwrap();
        assert_eq!(eco, "cargo");
        assert_eq!(deps.len(), 4);
        assert!(deps.contains(&dep("local", Some("path:../l".into()), "normal")));
        assert!(deps.contains(&dep("tokio", Some("workspace".into()), "dev")));
        let (_, deps) = manifest("go.mod", "module m\n\ngo 1.22\n\nrequire (\n\tgithub.com/a/b v1.2.3\n\tgolang.org/x/c v0.1.0 // indirect\n)\nrequire example.com/d v2.0.0\n").unwrap();
        assert_eq!(deps.len(), 3);
        assert!(manifest("Cargo.toml", "[dependencies\n").is_err());
    }
}
