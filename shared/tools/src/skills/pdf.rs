//! The `pdf` skill: information, text by page, search and creation of PDF files of the
//! project ([`crate::pdf`]). Paths are confined to the project root like the filesystem skill
//! ([`crate::files`]); a PDF is at most 10 MB, its text is capped, and parsing runs on a
//! blocking thread under the tool's timeout.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::files::{self, WriteMode};
use crate::pdf;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "pdf";
/// Characters of text one call returns at most.
const MAX_TEXT_CHARS: usize = 1_000_000;
/// Characters of text `pdf_create` accepts.
const MAX_CREATE_CHARS: usize = 1_000_000;
const MAX_MATCHES: usize = 500;

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Utility, description)
        .timeout(Duration::from_secs(60))
}

fn path_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 4096})
}

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    reg.register(
        def("pdf_info", "Page count, PDF version, encryption and metadata (title, author, dates) of a PDF file")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {"path": path_schema()},
                "required": ["path"],
                "additionalProperties": false,
            }))
            .output("{path, version, pages, encrypted, title, author, subject, keywords, creator, producer, creation_date, modification_date}"),
        pdf_info,
    )?;
    reg.register(
        def(
            "pdf_read",
            "Text of a PDF file, page by page (a page range, capped length)",
        )
        .permissions(&[Permission::Read])
        .schema(json!({
            "type": "object",
            "properties": {
                "path": path_schema(),
                "first_page": {"type": "integer", "minimum": 1},
                "last_page": {"type": "integer", "minimum": 1},
                "max_chars": {"type": "integer", "minimum": 1, "maximum": MAX_TEXT_CHARS},
            },
            "required": ["path"],
            "additionalProperties": false,
        }))
        .output("{path, page_count, pages[{page, text}], truncated}"),
        pdf_read,
    )?;
    reg.register(
        def(
            "pdf_search",
            "Find a text in a PDF file: the pages and lines that hold it",
        )
        .permissions(&[Permission::Read])
        .schema(json!({
            "type": "object",
            "properties": {
                "path": path_schema(),
                "query": {"type": "string", "minLength": 1, "maxLength": 1000},
                "case_sensitive": {"type": "boolean"},
                "max_matches": {"type": "integer", "minimum": 1, "maximum": MAX_MATCHES},
            },
            "required": ["path", "query"],
            "additionalProperties": false,
        }))
        .output("{path, query, matches[{page, line}], truncated}"),
        pdf_search,
    )?;
    reg.register(
        def("pdf_create", "Write a PDF file of plain text (Courier, A4, wrapped lines) in the project")
            .permissions(&[Permission::Write])
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "(?i)\\.pdf$"},
                    "text": {"type": "string", "maxLength": MAX_CREATE_CHARS},
                    "title": {"type": "string", "maxLength": 500},
                    "overwrite": {"type": "boolean"},
                },
                "required": ["path", "text"],
                "additionalProperties": false,
            }))
            .output("{path, bytes, pages, created}"),
        pdf_create,
    )?;
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::Failed(format!("PDF work failed: {e}")))?
}

#[derive(Deserialize)]
struct PathInput {
    path: String,
}

async fn pdf_info(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: PathInput = parse(input)?;
    let root = ctx.root()?;
    let (abs, bytes) = files::read_bytes(root, &i.path).await?;
    let info = blocking(move || pdf::info(&bytes)).await?;
    let mut data = serde_json::to_value(&info).unwrap_or(Value::Null);
    data["path"] = json!(root.relative(&abs));
    Ok(ToolOutput::ok(
        format!("PDF {} with {} page(s)", info.version, info.pages),
        data,
    ))
}

#[derive(Deserialize)]
struct ReadInput {
    path: String,
    first_page: Option<u32>,
    last_page: Option<u32>,
    max_chars: Option<usize>,
}

async fn pdf_read(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: ReadInput = parse(input)?;
    let first = i.first_page.unwrap_or(1);
    if i.last_page.is_some_and(|l| l < first) {
        return Err(ToolError::InvalidInput(
            "last_page is before first_page".into(),
        ));
    }
    let root = ctx.root()?;
    let (abs, bytes) = files::read_bytes(root, &i.path).await?;
    let max = i.max_chars.unwrap_or(MAX_TEXT_CHARS).min(MAX_TEXT_CHARS);
    let (pages, count, truncated) =
        blocking(move || pdf::text(&bytes, first, i.last_page, max)).await?;
    Ok(ToolOutput::ok(
        format!("Text of {} page(s) of {count}", pages.len()),
        json!({"path": root.relative(&abs), "page_count": count, "pages": pages, "truncated": truncated}),
    ))
}

#[derive(Deserialize)]
struct SearchInput {
    path: String,
    query: String,
    case_sensitive: Option<bool>,
    max_matches: Option<usize>,
}

async fn pdf_search(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: SearchInput = parse(input)?;
    let root = ctx.root()?;
    let (abs, bytes) = files::read_bytes(root, &i.path).await?;
    let (pages, _, _) = blocking(move || pdf::text(&bytes, 1, None, usize::MAX)).await?;
    let sensitive = i.case_sensitive.unwrap_or(false);
    let needle = if sensitive {
        i.query.clone()
    } else {
        i.query.to_lowercase()
    };
    let cap = i.max_matches.unwrap_or(100).min(MAX_MATCHES);
    let mut matches = Vec::new();
    let mut truncated = false;
    'pages: for p in &pages {
        for line in p.text.lines() {
            let hay = if sensitive {
                line.to_owned()
            } else {
                line.to_lowercase()
            };
            if hay.contains(&needle) {
                if matches.len() == cap {
                    truncated = true;
                    break 'pages;
                }
                matches.push(json!({"page": p.page, "line": line.trim()}));
            }
        }
    }
    Ok(ToolOutput::ok(
        format!("{} match(es) of '{}'", matches.len(), i.query),
        json!({"path": root.relative(&abs), "query": i.query, "matches": matches, "truncated": truncated}),
    ))
}

#[derive(Deserialize)]
struct CreateInput {
    path: String,
    text: String,
    title: Option<String>,
    overwrite: Option<bool>,
}

async fn pdf_create(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: CreateInput = parse(input)?;
    let root = ctx.root()?;
    let title = i.title.clone();
    let text = i.text;
    let bytes = blocking(move || pdf::create(title.as_deref(), &text)).await?;
    let mode = if i.overwrite.unwrap_or(false) {
        WriteMode::Overwrite
    } else {
        WriteMode::Create
    };
    let written = files::write(root, &i.path, &bytes, mode, true).await?;
    let len = bytes.len();
    let pages = blocking(move || pdf::info(&bytes).map(|i| i.pages)).await?;
    Ok(ToolOutput::ok(
        format!("Wrote {} ({pages} page(s), {len} bytes)", written.rel),
        json!({"path": written.rel, "bytes": len, "pages": pages, "created": written.created}),
    ))
}
