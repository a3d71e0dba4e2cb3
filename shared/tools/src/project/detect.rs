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

/// `key = "value"` inside `[section]` of a TOML file (enough for names and versions; no TOML
/// parser needed for these few keys).
fn toml_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == format!("[{section}]");
            continue;
        }
        if in_section
            && let Some((k, v)) = t.split_once('=')
            && k.trim() == key
        {
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            return Some(v.to_owned());
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

/// Detects what it can in `dir`.
pub fn detect(dir: &Path) -> Detection {
    let mut d = Detection {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Detection::default()
    };
    let mut languages = BTreeSet::new();
    let mut frameworks = BTreeSet::new();
    let mut tools = Map::new();
    let mut conventions = Map::new();
    let mut commands = Map::new();
    let mut notes = Vec::new();

    // Git.
    if let Some(head) = read(dir, ".git/HEAD") {
        let head = head.trim();
        d.branch = Some(match head.strip_prefix("ref: refs/heads/") {
            Some(b) => b.to_owned(),
            None => head.chars().take(12).collect(),
        });
        if let Some(cfg) = read(dir, ".git/config") {
            d.repository_url = toml_value(&cfg, "remote \"origin\"", "url");
        }
        notes.push(format!(
            "Git repository (branch {})",
            d.branch.as_deref().unwrap_or("?")
        ));
    }

    // Python.
    let pyproject = read(dir, "pyproject.toml");
    let requirements = read(dir, "requirements.txt").unwrap_or_default();
    let py_manifest = format!("{}\n{requirements}", pyproject.clone().unwrap_or_default());
    if pyproject.is_some() || exists(dir, "setup.py") || !requirements.is_empty() {
        languages.insert("python");
        if let Some(py) = &pyproject {
            if let Some(n) =
                toml_value(py, "project", "name").or_else(|| toml_value(py, "tool.poetry", "name"))
            {
                d.name = n;
            }
            if let Some(len) = toml_value(py, "tool.ruff", "line-length")
                .or_else(|| toml_value(py, "tool.black", "line-length"))
            {
                conventions.insert("line_length".into(), json!(len.parse::<u64>().ok()));
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
            if mentions(&py_manifest, fw) {
                frameworks.insert(fw);
            }
        }
        let pm = if exists(dir, "uv.lock") {
            "uv"
        } else if exists(dir, "poetry.lock") {
            "poetry"
        } else {
            "pip"
        };
        tools.insert("package_manager".into(), json!(pm));
        if mentions(&py_manifest, "pytest") || exists(dir, "pytest.ini") || exists(dir, "tests") {
            tools.insert("test_runner".into(), json!("pytest"));
            commands.insert("test".into(), json!("pytest"));
        }
        if mentions(&py_manifest, "ruff") || exists(dir, "ruff.toml") {
            tools.insert("linter".into(), json!("ruff"));
            commands.insert("lint".into(), json!("ruff check ."));
            tools.insert("formatter".into(), json!("ruff format"));
            commands.insert("format".into(), json!("ruff format ."));
        } else if mentions(&py_manifest, "black") {
            tools.insert("formatter".into(), json!("black"));
            commands.insert("format".into(), json!("black ."));
        }
        if mentions(&py_manifest, "mypy") {
            tools.insert("type_checker".into(), json!("mypy"));
        }
        for venv in [".venv", "venv", "env"] {
            if let Some(cfg) = read(dir, &format!("{venv}/pyvenv.cfg")) {
                d.venv_path = Some(dir.join(venv).to_string_lossy().into_owned());
                d.python_version = cfg.lines().find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_owned())
                });
                notes.push(format!("Python virtualenv in {venv}"));
                break;
            }
        }
        if d.python_version.is_none() {
            d.python_version = read(dir, ".python-version")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty());
        }
    }

    // JavaScript / TypeScript.
    if let Some(pkg) = read(dir, "package.json") {
        languages.insert("javascript");
        if let Ok(v) = serde_json::from_str::<Value>(&pkg) {
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
                    frameworks.insert(fw);
                }
            }
            if deps.contains("typescript") || exists(dir, "tsconfig.json") {
                languages.insert("typescript");
            }
            let runner = if exists(dir, "pnpm-lock.yaml") {
                "pnpm"
            } else if exists(dir, "yarn.lock") {
                "yarn"
            } else {
                "npm"
            };
            tools.insert("package_manager".into(), json!(runner));
            if let Some(scripts) = v.get("scripts").and_then(Value::as_object) {
                for name in scripts.keys().take(30) {
                    commands.insert(name.clone(), json!(format!("{runner} run {name}")));
                }
            }
            if deps.contains("eslint") {
                tools.insert("linter".into(), json!("eslint"));
            }
            if deps.contains("prettier") {
                tools.insert("formatter".into(), json!("prettier"));
            }
        }
    }

    // Rust.
    if let Some(cargo) = read(dir, "Cargo.toml") {
        languages.insert("rust");
        if let Some(n) = toml_value(&cargo, "package", "name") {
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
                frameworks.insert(fw);
            }
        }
        tools.insert("package_manager".into(), json!("cargo"));
        tools.insert("linter".into(), json!("clippy"));
        tools.insert("formatter".into(), json!("rustfmt"));
        commands.insert("build".into(), json!("cargo build"));
        commands.insert("test".into(), json!("cargo test"));
        commands.insert("lint".into(), json!("cargo clippy"));
        commands.insert("format".into(), json!("cargo fmt"));
    }

    // Go.
    if let Some(gomod) = read(dir, "go.mod") {
        languages.insert("go");
        if let Some(m) = gomod.lines().find_map(|l| l.trim().strip_prefix("module ")) {
            d.name = m.trim().rsplit('/').next().unwrap_or(m).to_owned();
        }
        for fw in ["gin", "echo", "fiber", "grpc"] {
            if mentions(&gomod, fw) {
                frameworks.insert(fw);
            }
        }
        commands.insert("build".into(), json!("go build ./..."));
        commands.insert("test".into(), json!("go test ./..."));
    }

    // Java.
    for manifest in ["pom.xml", "build.gradle"] {
        if let Some(text) = read(dir, manifest) {
            languages.insert("java");
            if mentions(&text, "spring-boot") || text.contains("org.springframework.boot") {
                frameworks.insert("spring-boot");
            }
            tools.insert(
                "build_tool".into(),
                json!(if manifest == "pom.xml" {
                    "maven"
                } else {
                    "gradle"
                }),
            );
        }
    }

    // Makefile targets win for the usual commands.
    if let Some(make) = read(dir, "Makefile") {
        for line in make.lines() {
            if let Some((target, _)) = line.split_once(':')
                && ["test", "build", "lint", "run", "fmt", "format", "install"].contains(&target)
            {
                commands.insert(target.to_owned(), json!(format!("make {target}")));
            }
        }
    }

    // Editor conventions.
    if let Some(ec) = read(dir, ".editorconfig") {
        for line in ec.lines() {
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "indent_style" => {
                        conventions.entry("indent_style").or_insert(json!(v.trim()));
                    }
                    "indent_size" => {
                        conventions
                            .entry("indent_size")
                            .or_insert(json!(v.trim().parse::<u64>().ok()));
                    }
                    _ => {}
                }
            }
        }
    }

    // Infrastructure.
    if exists(dir, ".github/workflows") {
        tools.insert("ci".into(), json!("github-actions"));
        notes.push("CI: GitHub Actions".into());
    } else if exists(dir, ".gitlab-ci.yml") {
        tools.insert("ci".into(), json!("gitlab-ci"));
    }
    if exists(dir, "Dockerfile") || exists(dir, "compose.yaml") || exists(dir, "docker-compose.yml")
    {
        tools.insert("containers".into(), json!("docker"));
        frameworks.insert("docker");
    }

    let key_files: Map<String, Value> = [
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
    .collect();

    d.languages = languages.iter().map(|s| (*s).to_owned()).collect();
    d.frameworks = frameworks.iter().map(|s| (*s).to_owned()).collect();
    d.tech_stack = languages
        .iter()
        .chain(frameworks.iter())
        .map(|s| (*s).to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    d.tools = Value::Object(tools);
    d.conventions = Value::Object(conventions);
    d.key_files = Value::Object(key_files);
    d.commands = Value::Object(commands);
    d.notes = notes;
    d
}
