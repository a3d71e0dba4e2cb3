//! Stack auto-detection (contract §2.13 `auto_detect`): name, branch, languages, frameworks,
//! virtualenv and Python version, tools, conventions, key files, commands and notes, read
//! from the files in the project folder. Blocking file reads: call it on a blocking thread.
//! Manifests are read up to a size limit, so a huge file cannot stall detection.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};

/// Largest manifest read.
const MAX_MANIFEST: u64 = 512 * 1024;

/// Files that mark a folder as a project (`is_project` of the folder browser).
pub const PROJECT_MARKERS: &[&str] = &[
    "pyproject.toml",
    "setup.py",
    "package.json",
    "Cargo.toml",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "Makefile",
    ".git",
];

pub fn is_project(dir: &Path) -> bool {
    PROJECT_MARKERS.iter().any(|m| dir.join(m).exists())
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detection {
    pub name: String,
    pub branch: Option<String>,
    pub repository_url: Option<String>,
    pub tech_stack: Vec<String>,
    pub languages: Vec<String>,
    pub frameworks: Vec<String>,
    pub venv_path: Option<String>,
    pub python_version: Option<String>,
    pub tools: Value,
    pub conventions: Value,
    pub key_files: Value,
    pub commands: Value,
    pub notes: Vec<String>,
}

fn read(dir: &Path, name: &str) -> Option<String> {
    let path = dir.join(name);
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_MANIFEST {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

/// A parsed TOML manifest (`None` when it does not parse: detection then skips its keys).
fn parse_toml(text: &str) -> Option<toml::Table> {
    text.parse::<toml::Table>().ok()
}

/// The string (or integer, as text) at `path` (dotted: `tool.ruff.line-length`) in `table`.
fn toml_str(table: &toml::Table, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// `key = value` in the `[section]` of a git config file. Git's config format is INI-like (not
/// TOML: values are unquoted, sections carry quoted subsections), and the only crate that reads
/// it (`gix-config`) would bring a large part of gitoxide for one key; this reads exactly the
/// subset git writes for a remote.
fn git_config_value(text: &str, section: &str, key: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == header;
            continue;
        }
        if in_section
            && let Some((k, v)) = t.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').to_owned());
        }
    }
    None
}

fn mentions(text: &str, word: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let mut start = 0;
    while let Some(i) = lower[start..].find(word) {
        let at = start + i;
        let before = lower[..at].chars().next_back();
        let after = lower[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| {
            c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        };
        if boundary(before) && boundary(after) {
            return true;
        }
        start = at + word.len();
    }
    false
}

/// What the per-stack readers find, merged into one [`Detection`] at the end.
#[derive(Default)]
struct Found {
    languages: BTreeSet<&'static str>,
    frameworks: BTreeSet<&'static str>,
    tools: Map<String, Value>,
    conventions: Map<String, Value>,
    commands: Map<String, Value>,
    notes: Vec<String>,
}

impl Found {
    fn tool(&mut self, name: &str, value: &str) {
        self.tools.insert(name.into(), json!(value));
    }

    fn command(&mut self, name: &str, value: impl Into<String>) {
        self.commands.insert(name.into(), json!(value.into()));
    }
}

/// Detects what it can in `dir`.
pub fn detect(dir: &Path) -> Detection {
    let mut d = Detection {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Detection::default()
    };
    let mut f = Found::default();
    git(dir, &mut d, &mut f);
    python(dir, &mut d, &mut f);
    javascript(dir, &mut d, &mut f);
    rust(dir, &mut d, &mut f);
    go(dir, &mut d, &mut f);
    java(dir, &mut f);
    makefile(dir, &mut f);
    editorconfig(dir, &mut f);
    infrastructure(dir, &mut f);

    d.languages = f.languages.iter().map(|s| (*s).to_owned()).collect();
    d.frameworks = f.frameworks.iter().map(|s| (*s).to_owned()).collect();
    d.tech_stack = f
        .languages
        .iter()
        .chain(f.frameworks.iter())
        .map(|s| (*s).to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    d.tools = Value::Object(f.tools);
    d.conventions = Value::Object(f.conventions);
    d.key_files = Value::Object(key_files(dir));
    d.commands = Value::Object(f.commands);
    d.notes = f.notes;
    d
}

fn git(dir: &Path, d: &mut Detection, f: &mut Found) {
    let Some(head) = read(dir, ".git/HEAD") else {
        return;
    };
    let head = head.trim();
    d.branch = Some(match head.strip_prefix("ref: refs/heads/") {
        Some(b) => b.to_owned(),
        None => head.chars().take(12).collect(),
    });
    if let Some(cfg) = read(dir, ".git/config") {
        d.repository_url = git_config_value(&cfg, "remote \"origin\"", "url");
    }
    f.notes.push(format!(
        "Git repository (branch {})",
        d.branch.as_deref().unwrap_or("?")
    ));
}

fn python(dir: &Path, d: &mut Detection, f: &mut Found) {
    let pyproject = read(dir, "pyproject.toml");
    let requirements = read(dir, "requirements.txt").unwrap_or_default();
    if pyproject.is_none() && !exists(dir, "setup.py") && requirements.is_empty() {
        return;
    }
    let manifest = format!("{}\n{requirements}", pyproject.clone().unwrap_or_default());
    f.languages.insert("python");
    if let Some(py) = pyproject.as_deref().and_then(parse_toml) {
        if let Some(n) = toml_str(&py, "project.name").or_else(|| toml_str(&py, "tool.poetry.name"))
        {
            d.name = n;
        }
        if let Some(len) = toml_str(&py, "tool.ruff.line-length")
            .or_else(|| toml_str(&py, "tool.black.line-length"))
        {
            f.conventions
                .insert("line_length".into(), json!(len.parse::<u64>().ok()));
        }
    }
    for fw in [
        "fastapi",
        "django",
        "flask",
        "starlette",
        "pydantic",
        "sqlalchemy",
        "celery",
        "pytest",
        "numpy",
        "pandas",
    ] {
        if mentions(&manifest, fw) {
            f.frameworks.insert(fw);
        }
    }
    let pm = if exists(dir, "uv.lock") {
        "uv"
    } else if exists(dir, "poetry.lock") {
        "poetry"
    } else {
        "pip"
    };
    f.tool("package_manager", pm);
    if mentions(&manifest, "pytest") || exists(dir, "pytest.ini") || exists(dir, "tests") {
        f.tool("test_runner", "pytest");
        f.command("test", "pytest");
    }
    if mentions(&manifest, "ruff") || exists(dir, "ruff.toml") {
        f.tool("linter", "ruff");
        f.command("lint", "ruff check .");
        f.tool("formatter", "ruff format");
        f.command("format", "ruff format .");
    } else if mentions(&manifest, "black") {
        f.tool("formatter", "black");
        f.command("format", "black .");
    }
    if mentions(&manifest, "mypy") {
        f.tool("type_checker", "mypy");
    }
    python_env(dir, d, f);
}

/// The virtualenv and the Python version it (or `.python-version`) names.
fn python_env(dir: &Path, d: &mut Detection, f: &mut Found) {
    for venv in [".venv", "venv", "env"] {
        if let Some(cfg) = read(dir, &format!("{venv}/pyvenv.cfg")) {
            d.venv_path = Some(dir.join(venv).to_string_lossy().into_owned());
            d.python_version = cfg.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_owned())
            });
            f.notes.push(format!("Python virtualenv in {venv}"));
            break;
        }
    }
    if d.python_version.is_none() {
        d.python_version = read(dir, ".python-version")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
    }
}

fn javascript(dir: &Path, d: &mut Detection, f: &mut Found) {
    let Some(pkg) = read(dir, "package.json") else {
        return;
    };
    f.languages.insert("javascript");
    let Ok(v) = serde_json::from_str::<Value>(&pkg) else {
        return;
    };
    if let Some(n) = v.get("name").and_then(Value::as_str) {
        d.name = n.to_owned();
    }
    let deps: BTreeSet<String> = ["dependencies", "devDependencies"]
        .iter()
        .filter_map(|k| v.get(*k).and_then(Value::as_object))
        .flat_map(|o| o.keys().cloned())
        .collect();
    for (dep, fw) in [
        ("react", "react"),
        ("vue", "vue"),
        ("next", "next"),
        ("svelte", "svelte"),
        ("@angular/core", "angular"),
        ("express", "express"),
        ("vite", "vite"),
        ("jest", "jest"),
        ("vitest", "vitest"),
        ("tailwindcss", "tailwindcss"),
    ] {
        if deps.contains(dep) {
            f.frameworks.insert(fw);
        }
    }
    if deps.contains("typescript") || exists(dir, "tsconfig.json") {
        f.languages.insert("typescript");
    }
    let runner = if exists(dir, "pnpm-lock.yaml") {
        "pnpm"
    } else if exists(dir, "yarn.lock") {
        "yarn"
    } else {
        "npm"
    };
    f.tool("package_manager", runner);
    if let Some(scripts) = v.get("scripts").and_then(Value::as_object) {
        for name in scripts.keys().take(30) {
            f.command(name, format!("{runner} run {name}"));
        }
    }
    if deps.contains("eslint") {
        f.tool("linter", "eslint");
    }
    if deps.contains("prettier") {
        f.tool("formatter", "prettier");
    }
}

fn rust(dir: &Path, d: &mut Detection, f: &mut Found) {
    let Some(cargo) = read(dir, "Cargo.toml") else {
        return;
    };
    f.languages.insert("rust");
    if let Some(n) = parse_toml(&cargo).and_then(|t| toml_str(&t, "package.name")) {
        d.name = n;
    }
    for fw in [
        "actix-web",
        "axum",
        "tokio",
        "tonic",
        "rocket",
        "sqlx",
        "diesel",
        "bevy",
        "serde",
    ] {
        if mentions(&cargo, fw) {
            f.frameworks.insert(fw);
        }
    }
    f.tool("package_manager", "cargo");
    f.tool("linter", "clippy");
    f.tool("formatter", "rustfmt");
    f.command("build", "cargo build");
    f.command("test", "cargo test");
    f.command("lint", "cargo clippy");
    f.command("format", "cargo fmt");
}

fn go(dir: &Path, d: &mut Detection, f: &mut Found) {
    let Some(gomod) = read(dir, "go.mod") else {
        return;
    };
    f.languages.insert("go");
    if let Some(m) = gomod.lines().find_map(|l| l.trim().strip_prefix("module ")) {
        d.name = m.trim().rsplit('/').next().unwrap_or(m).to_owned();
    }
    for fw in ["gin", "echo", "fiber", "grpc"] {
        if mentions(&gomod, fw) {
            f.frameworks.insert(fw);
        }
    }
    f.command("build", "go build ./...");
    f.command("test", "go test ./...");
}

fn java(dir: &Path, f: &mut Found) {
    for (manifest, build_tool) in [("pom.xml", "maven"), ("build.gradle", "gradle")] {
        if let Some(text) = read(dir, manifest) {
            f.languages.insert("java");
            if mentions(&text, "spring-boot") || text.contains("org.springframework.boot") {
                f.frameworks.insert("spring-boot");
            }
            f.tool("build_tool", build_tool);
        }
    }
}

/// Makefile targets win for the usual commands.
fn makefile(dir: &Path, f: &mut Found) {
    let Some(make) = read(dir, "Makefile") else {
        return;
    };
    for line in make.lines() {
        if let Some((target, _)) = line.split_once(':')
            && ["test", "build", "lint", "run", "fmt", "format", "install"].contains(&target)
        {
            f.command(target, format!("make {target}"));
        }
    }
}

fn editorconfig(dir: &Path, f: &mut Found) {
    let Some(ec) = read(dir, ".editorconfig") else {
        return;
    };
    for line in ec.lines() {
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "indent_style" => {
                    f.conventions
                        .entry("indent_style")
                        .or_insert(json!(v.trim()));
                }
                "indent_size" => {
                    f.conventions
                        .entry("indent_size")
                        .or_insert(json!(v.trim().parse::<u64>().ok()));
                }
                _ => {}
            }
        }
    }
}

fn infrastructure(dir: &Path, f: &mut Found) {
    if exists(dir, ".github/workflows") {
        f.tool("ci", "github-actions");
        f.notes.push("CI: GitHub Actions".into());
    } else if exists(dir, ".gitlab-ci.yml") {
        f.tool("ci", "gitlab-ci");
    }
    if exists(dir, "Dockerfile") || exists(dir, "compose.yaml") || exists(dir, "docker-compose.yml")
    {
        f.tool("containers", "docker");
        f.frameworks.insert("docker");
    }
}

fn key_files(dir: &Path) -> Map<String, Value> {
    [
        ("README.md", "Project overview"),
        ("README.rst", "Project overview"),
        ("CONTRIBUTING.md", "Contribution guide"),
        ("AGENTS.md", "Instructions for agents"),
        ("CLAUDE.md", "Instructions for agents"),
        ("pyproject.toml", "Python project configuration"),
        ("setup.py", "Python packaging"),
        ("requirements.txt", "Python dependencies"),
        ("package.json", "Node.js package and scripts"),
        ("tsconfig.json", "TypeScript configuration"),
        ("Cargo.toml", "Rust crate/workspace manifest"),
        ("go.mod", "Go module"),
        ("pom.xml", "Maven build"),
        ("build.gradle", "Gradle build"),
        ("Makefile", "Build targets"),
        ("Dockerfile", "Container image"),
        ("compose.yaml", "Container services"),
        ("docker-compose.yml", "Container services"),
        (".env.example", "Environment variables template"),
    ]
    .iter()
    .filter(|(f, _)| exists(dir, f))
    .map(|(f, desc)| ((*f).to_owned(), json!(desc)))
    .collect()
}
