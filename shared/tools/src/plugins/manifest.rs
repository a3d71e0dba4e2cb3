//! The plugin manifest, `gathering-plugin.json`: who the plugin is and how to reach its tools.
//! A plugin is either an MCP server (`mcp`: a stdio command, or a streamable-HTTP URL) or a set
//! of declarative tools (`tools`: an HTTP call template, or a call of an existing pipeline).
//! Plugins that ship code to run inside GatheRing do not exist: a tool carrying `code` is
//! refused, and the answer says MCP servers are the way.
//!
//! Everything here is checked on construction ([`Manifest::parse`]), so the rest of the plugin
//! code starts from a valid manifest: ids and tool names that fit in a model's tool-name rules,
//! schemas that compile, limits within bounds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::definition::Category;
use crate::permission::{Grants, Permission};
use crate::validate::Schema;

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "gathering-plugin.json";
/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024;
/// Most declarative tools in one plugin (and most MCP tools registered from one server).
pub const MAX_TOOLS: usize = 200;
/// Separator between the plugin id and a tool's own name in the registry: tool names of model
/// APIs allow `[A-Za-z0-9_-]{1,64}` only, so no dot.
pub const NAMESPACE_SEP: &str = "__";
/// The message a tool with `code` gets.
pub const CODE_REFUSED: &str = "code plugins are not supported: GatheRing never runs plugin source code in its own \
     processes. Publish the tool as an MCP server (a stdio command or a streamable-HTTP URL in \
     the manifest's `mcp`), or declare it as an HTTP call template (`http`) or a pipeline call \
     (`pipeline`)";

/// How a plugin's MCP server is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum McpSpec {
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
    Http {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

/// A declarative tool's action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpTemplate {
    #[serde(default = "default_method")]
    pub method: String,
    /// `{{param}}` placeholders are replaced by the input's values, percent-encoded.
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body; a string that is exactly `{{param}}` becomes that value, other strings get
    /// their placeholders replaced as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineCall {
    pub pipeline_id: i64,
}

/// A tool declared in the manifest (or in `POST /plugins/dynamic`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclaredTool {
    pub name: String,
    pub description: String,
    #[serde(default = "default_category")]
    pub category: String,
    #[serde(default)]
    pub required_competencies: Vec<String>,
    /// JSON Schema of the input.
    #[serde(default = "empty_object")]
    pub parameters: Value,
    #[serde(default)]
    pub returns: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    #[serde(default)]
    pub dangerous: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineCall>,
    /// Never accepted; kept only so that its presence can be refused with a clear message.
    #[serde(default, skip_serializing)]
    pub code: Option<Value>,
}

fn default_category() -> String {
    "custom".into()
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Per-plugin limits (each bounded; absent means the default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "d_result")]
    pub max_result_bytes: usize,
    #[serde(default = "d_concurrent")]
    pub max_concurrent_calls: usize,
}

fn d_timeout() -> u64 {
    30_000
}
fn d_result() -> usize {
    1024 * 1024
}
fn d_concurrent() -> usize {
    4
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: d_timeout(),
            max_result_bytes: d_result(),
            max_concurrent_calls: d_concurrent(),
        }
    }
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<DeclaredTool>,
    #[serde(default)]
    pub competencies: Vec<String>,
    /// Permissions the plugin's MCP tools need; default `execute` for a stdio server (it is a
    /// program on this server) and `network` for an HTTP one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Every MCP tool of the plugin needs confirmation (tools annotated destructive do anyway).
    #[serde(default)]
    pub dangerous: bool,
    #[serde(default)]
    pub limits: Limits,
}

fn default_version() -> String {
    "0.0.0".into()
}

/// What kind of plugin a manifest describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stdio,
    Http,
    Declarative,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Stdio => "stdio",
            Kind::Http => "http",
            Kind::Declarative => "declarative",
        }
    }
}

/// One problem with a manifest: where (a dotted path) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `[a-z0-9]` then `[a-z0-9_-]`, at most 40, no `__` (the namespace separator).
pub fn valid_plugin_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !id.contains(NAMESPACE_SEP)
}

/// A tool's own name: `[A-Za-z0-9_-]`, and with the namespace at most 64 characters.
pub fn valid_tool_name(plugin_id: &str, name: &str) -> bool {
    !name.is_empty()
        && plugin_id.len() + NAMESPACE_SEP.len() + name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The registry name of a plugin's tool.
pub fn tool_name(plugin_id: &str, tool: &str) -> String {
    format!("{plugin_id}{NAMESPACE_SEP}{tool}")
}

/// The catalogue skill (`agent.skills.name`) a plugin's tools belong to, for per-agent
/// enablement.
pub fn skill_name(plugin_id: &str) -> String {
    format!("plugin:{plugin_id}")
}

pub fn parse_permissions(names: &[String]) -> Result<Grants, String> {
    let mut g = Grants::NONE;
    for n in names {
        g = g.with(Permission::parse(n).ok_or_else(|| format!("unknown permission '{n}'"))?);
    }
    Ok(g)
}

impl Manifest {
    /// Parses and checks a manifest; every problem is reported.
    pub fn parse(value: Value) -> Result<Manifest, Vec<Problem>> {
        let m: Manifest = serde_json::from_value(value).map_err(|e| {
            vec![Problem::new(
                "(root)",
                format!("not a plugin manifest: {e}"),
            )]
        })?;
        let problems = m.problems();
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(problems)
        }
    }

    pub fn kind(&self) -> Kind {
        match &self.mcp {
            Some(McpSpec::Stdio { .. }) => Kind::Stdio,
            Some(McpSpec::Http { .. }) => Kind::Http,
            None => Kind::Declarative,
        }
    }

    /// The permissions the plugin's MCP tools require.
    pub fn mcp_grants(&self) -> Grants {
        match &self.permissions {
            Some(p) => parse_permissions(p).unwrap_or(Grants::all()),
            None if self.kind() == Kind::Http => Grants::of(&[Permission::Network]),
            None => Grants::of(&[Permission::Execute]),
        }
    }

    /// Every problem of the manifest, in the order of its fields.
    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        self.identity_problems(&mut out);
        self.limits.problems(&mut out);
        self.mcp_problems(&mut out);
        self.tools_problems(&mut out);
        out
    }

    /// Who the plugin is: its id, texts, tags and competencies, and the permissions it asks for.
    fn identity_problems(&self, out: &mut Vec<Problem>) {
        if !valid_plugin_id(&self.id) {
            out.push(Problem::new(
                "id",
                "id must be 1 to 40 characters of a-z, 0-9, '_' and '-', start with a letter or digit, and not contain '__'",
            ));
        }
        let text_fields = [
            ("name", Some(&self.name), 1, 100),
            ("version", Some(&self.version), 1, 50),
            ("description", Some(&self.description), 0, 2000),
            ("author", self.author.as_ref(), 0, 200),
            ("license", self.license.as_ref(), 0, 100),
            ("homepage", self.homepage.as_ref(), 0, 500),
        ];
        for (field, value, min, max) in text_fields {
            if let Some(v) = value
                && !(min..=max).contains(&v.chars().count())
            {
                out.push(Problem::new(
                    field,
                    format!("{field} must be {min} to {max} characters"),
                ));
            }
        }
        if self.tags.len() > 20 || self.tags.iter().any(|t| t.is_empty() || t.len() > 50) {
            out.push(Problem::new(
                "tags",
                "at most 20 tags of 1 to 50 characters",
            ));
        }
        if self.competencies.len() > 50 || self.competencies.iter().any(|c| c.len() > 100) {
            out.push(Problem::new(
                "competencies",
                "at most 50 competencies of up to 100 characters",
            ));
        }
        if let Some(p) = &self.permissions
            && let Err(e) = parse_permissions(p)
        {
            out.push(Problem::new("permissions", e));
        }
    }

    /// An MCP server or declarative tools, exactly one; the server's command or URL.
    fn mcp_problems(&self, out: &mut Vec<Problem>) {
        match (&self.mcp, self.tools.is_empty()) {
            (Some(_), false) => out.push(Problem::new(
                "tools",
                "a plugin is either an MCP server (mcp) or declarative tools (tools), not both",
            )),
            (None, true) => out.push(Problem::new(
                "mcp",
                "a plugin needs an MCP server (mcp: {command, args, env} or {url, headers}) or declarative tools",
            )),
            _ => {}
        }
        match &self.mcp {
            Some(McpSpec::Stdio { command, args, env }) => {
                if command.trim().is_empty() || command.len() > 1000 {
                    out.push(Problem::new(
                        "mcp.command",
                        "command must be 1 to 1000 characters",
                    ));
                }
                if args.len() > 100 || env.len() > 100 {
                    out.push(Problem::new("mcp", "at most 100 args and 100 env entries"));
                }
                if env
                    .keys()
                    .any(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
                {
                    out.push(Problem::new("mcp.env", "invalid environment variable name"));
                }
            }
            Some(McpSpec::Http { url, headers }) => {
                match url::Url::parse(url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => out.push(Problem::new("mcp.url", "url must be an http(s) URL")),
                }
                for (k, v) in headers {
                    if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                        || reqwest::header::HeaderValue::from_str(v).is_err()
                    {
                        out.push(Problem::new(format!("mcp.headers.{k}"), "invalid header"));
                    }
                }
            }
            None => {}
        }
    }

    /// The declarative tools: how many, unique names, and each one's own problems.
    fn tools_problems(&self, out: &mut Vec<Problem>) {
        if self.tools.len() > MAX_TOOLS {
            out.push(Problem::new("tools", format!("at most {MAX_TOOLS} tools")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.tools.iter().enumerate() {
            let at = |f: &str| format!("tools[{i}].{f}");
            if !seen.insert(t.name.clone()) {
                out.push(Problem::new(
                    at("name"),
                    format!("duplicate tool '{}'", t.name),
                ));
            }
            tool_problems(&self.id, t, &at, out);
        }
    }
}

impl Limits {
    /// Limits out of their bounds.
    fn problems(&self, out: &mut Vec<Problem>) {
        if !(100..=600_000).contains(&self.timeout_ms) {
            out.push(Problem::new(
                "limits.timeout_ms",
                "timeout_ms must be 100 to 600000",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_result_bytes) {
            out.push(Problem::new(
                "limits.max_result_bytes",
                "max_result_bytes must be 1 KiB to 16 MiB",
            ));
        }
        if !(1..=64).contains(&self.max_concurrent_calls) {
            out.push(Problem::new(
                "limits.max_concurrent_calls",
                "max_concurrent_calls must be 1 to 64",
            ));
        }
    }
}

fn tool_problems(
    plugin_id: &str,
    t: &DeclaredTool,
    at: &dyn Fn(&str) -> String,
    out: &mut Vec<Problem>,
) {
    if t.code.is_some() {
        out.push(Problem::new(at("code"), CODE_REFUSED));
        return;
    }
    if !valid_tool_name(plugin_id, &t.name) {
        out.push(Problem::new(
            at("name"),
            "name must be [A-Za-z0-9_-], and with the plugin id and '__' at most 64 characters",
        ));
    }
    if t.description.trim().is_empty() || t.description.len() > 2000 {
        out.push(Problem::new(
            at("description"),
            "description must be 1 to 2000 characters",
        ));
    }
    if Category::parse(&t.category).is_none() {
        out.push(Problem::new(
            at("category"),
            format!("unknown category '{}'", t.category),
        ));
    }
    if let Err(e) = Schema::compile(&t.parameters) {
        out.push(Problem::new(
            at("parameters"),
            format!("invalid JSON Schema: {e}"),
        ));
    }
    if let Some(p) = &t.permissions
        && let Err(e) = parse_permissions(p)
    {
        out.push(Problem::new(at("permissions"), e));
    }
    match (&t.http, &t.pipeline) {
        (Some(h), None) => {
            let method = h.method.to_ascii_uppercase();
            if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") {
                out.push(Problem::new(at("http.method"), "method must be GET, POST, PUT, PATCH, DELETE or HEAD"));
            }
            // The scheme and host are fixed by the template: placeholders only after them.
            let fixed = h.url.split("{{").next().unwrap_or("");
            match url::Url::parse(fixed) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && fixed.len() > u.origin().ascii_serialization().len() => {}
                _ => out.push(Problem::new(
                    at("http.url"),
                    "url must be an http(s) URL whose scheme, host and port come before any {{placeholder}}",
                )),
            }
        }
        (None, Some(_)) => {}
        _ => out.push(Problem::new(
            at("http"),
            "a declarative tool needs exactly one of http (a call template) or pipeline ({pipeline_id})",
        )),
    }
}

/// A manifest found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Reads `dir/gathering-plugin.json`. Blocking.
pub fn read(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{}: larger than {MAX_MANIFEST_BYTES} bytes",
            path.display()
        ));
    }
    let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_slice(&raw).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    Manifest::parse(value).map_err(|problems| {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        format!("{}: {}", path.display(), list.join("; "))
    })
}

/// Manifests in `dir` and its sub-folders (one level), with the problems of those that do not
/// parse. Blocking.
pub fn scan(dir: &Path) -> (Vec<Found>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut subs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        subs.sort();
        dirs.extend(subs.into_iter().take(1000));
    }
    for d in dirs {
        if !d.join(MANIFEST_FILE).is_file() {
            continue;
        }
        match read(&d) {
            Ok(manifest) => found.push(Found { dir: d, manifest }),
            Err(e) => errors.push(e),
        }
    }
    (found, errors)
}
