//! The `web` and `scraper` skills: `fetch_url` (readable text of a page), `extract_links`,
//! `extract_metadata` and `extract_tables`. Pages are fetched through the guarded client; the
//! extractors also accept HTML given directly. Parsing runs on a blocking thread.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};
use scraper::Html;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::html;
use super::http::parse_url;
use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::net::OutboundRequest;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

/// Largest HTML given directly or fetched for extraction.
const MAX_HTML: usize = 5 * 1024 * 1024;

fn url_prop() -> Value {
    json!({"type": "string", "minLength": 8, "maxLength": 8192, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
}

fn source_schema(extra: &[(&str, Value)]) -> Value {
    let mut props = serde_json::Map::new();
    props.insert("url".into(), url_prop());
    props.insert(
        "html".into(),
        json!({"type": "string", "maxLength": MAX_HTML}),
    );
    props.insert("base_url".into(), url_prop());
    for (k, v) in extra {
        props.insert((*k).to_owned(), v.clone());
    }
    json!({
        "type": "object",
        "properties": props,
        "anyOf": [{"required": ["url"]}, {"required": ["html"]}],
        "additionalProperties": false,
    })
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    reg.register(
        ToolDefinition::new(
            "fetch_url",
            "web",
            Category::Web,
            "Fetch a web page and return its readable text",
        )
        .permissions(&[Permission::Network])
        .timeout(Duration::from_secs(130))
        .schema(json!({
            "type": "object",
            "properties": {
                "url": url_prop(),
                "max_length": {"type": "integer", "minimum": 100, "maximum": 500000},
                "extract_text": {"type": "boolean"},
                "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 120},
            },
            "required": ["url"],
            "additionalProperties": false,
        }))
        .output("{url, final_url, status, content_type, title, content, length, truncated}"),
        with(svc.clone(), fetch_url),
    )?;
    let def = |name: &str, desc: &str, schema: Value, out: &str| {
        ToolDefinition::new(name, "scraper", Category::Web, desc)
            .permissions(&[Permission::Network])
            .timeout(Duration::from_secs(130))
            .schema(schema)
            .output(out)
    };
    reg.register(
        def(
            "extract_links",
            "Links of a page (by URL or HTML), absolute and de-duplicated",
            source_schema(&[
                ("same_domain_only", json!({"type": "boolean"})),
                (
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 5000}),
                ),
            ]),
            "{links[{url, text, rel, internal}], total}",
        ),
        with(svc.clone(), extract_links),
    )?;
    reg.register(
        def(
            "extract_metadata",
            "Metadata of a page: title, description, canonical, language, Open Graph, Twitter card",
            source_schema(&[]),
            "{title, description, keywords, author, canonical, language, charset, favicon, open_graph, twitter}",
        ),
        with(svc.clone(), extract_metadata),
    )?;
    reg.register(
        def(
            "extract_tables",
            "HTML tables of a page as headers and rows",
            source_schema(&[
                (
                    "max_tables",
                    json!({"type": "integer", "minimum": 1, "maximum": 100}),
                ),
                (
                    "max_rows",
                    json!({"type": "integer", "minimum": 1, "maximum": 10000}),
                ),
            ]),
            "{tables[{caption, headers, rows, row_count, truncated}], total}",
        ),
        with(svc.clone(), extract_tables),
    )?;
    Ok(())
}

struct Page {
    body: String,
    final_url: Url,
    status: u16,
    content_type: String,
    truncated: bool,
}

async fn fetch(svc: &Services, url: &str, timeout: Option<u64>) -> Result<Page, ToolError> {
    let mut req = OutboundRequest::new(Method::GET, parse_url(url)?);
    req.headers.insert(
        ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"),
    );
    req.timeout = timeout.map(Duration::from_secs);
    req.max_bytes = Some(MAX_HTML);
    let resp = svc.http.send(req).await?;
    if !resp.is_success() {
        return Err(ToolError::Failed(format!(
            "{} answered {}",
            resp.url, resp.status
        )));
    }
    Ok(Page {
        body: resp.text(),
        status: resp.status,
        content_type: resp.content_type().unwrap_or("").to_owned(),
        final_url: resp.url,
        truncated: resp.truncated,
    })
}

#[derive(Deserialize)]
struct FetchInput {
    url: String,
    max_length: Option<usize>,
    extract_text: Option<bool>,
    timeout_seconds: Option<u64>,
}

async fn fetch_url(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: FetchInput = parse(input)?;
    let page = fetch(&svc, &i.url, i.timeout_seconds).await?;
    let ct = page.content_type.to_ascii_lowercase();
    let is_html = ct.contains("html") || (ct.is_empty() && page.body.trim_start().starts_with('<'));
    if !is_html && !ct.starts_with("text/") && !ct.contains("json") && !ct.contains("xml") {
        return Err(ToolError::Failed(format!(
            "unsupported content type '{}'",
            page.content_type
        )));
    }
    let extract = i.extract_text.unwrap_or(true);
    let body = page.body;
    let (title, mut content) = if is_html && extract {
        tokio::task::spawn_blocking(move || {
            let doc = Html::parse_document(&body);
            (html::title(&doc), html::readable_text(&doc))
        })
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))?
    } else {
        (None, body)
    };
    let max = i.max_length.unwrap_or(20_000);
    let length = content.chars().count();
    let truncated = length > max || page.truncated;
    if length > max {
        content = content.chars().take(max).collect();
    }
    Ok(ToolOutput::ok(
        format!("Fetched {} ({} chars)", page.final_url, length.min(max)),
        json!({
            "url": i.url,
            "final_url": page.final_url.as_str(),
            "status": page.status,
            "content_type": page.content_type,
            "title": title,
            "content": content,
            "length": length,
            "truncated": truncated,
        }),
    ))
}

#[derive(Deserialize)]
struct SourceInput {
    url: Option<String>,
    html: Option<String>,
    base_url: Option<String>,
    same_domain_only: Option<bool>,
    limit: Option<usize>,
    max_tables: Option<usize>,
    max_rows: Option<usize>,
}

/// The HTML to work on and the URL links resolve against.
async fn source(svc: &Services, i: &SourceInput) -> Result<(String, Option<Url>), ToolError> {
    let base = i.base_url.as_deref().map(parse_url).transpose()?;
    match (&i.html, &i.url) {
        (Some(h), _) => Ok((
            h.clone(),
            base.or(i.url.as_deref().map(parse_url).transpose()?),
        )),
        (None, Some(u)) => {
            let page = fetch(svc, u, None).await?;
            Ok((page.body, base.or(Some(page.final_url))))
        }
        (None, None) => Err(ToolError::InvalidInput("give a url or html".into())),
    }
}

async fn parsed<T: Send + 'static>(
    html: String,
    f: impl FnOnce(&Html) -> T + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(move || f(&Html::parse_document(&html)))
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))
}

async fn extract_links(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: SourceInput = parse(input)?;
    let (html, base) = source(&svc, &i).await?;
    let limit = i.limit.unwrap_or(500);
    let same = i.same_domain_only.unwrap_or(false);
    let b = base.clone();
    let mut links = parsed(html, move |doc| html::links(doc, b.as_ref(), limit)).await?;
    if same {
        links.retain(|l| l["internal"] == json!(true));
    }
    Ok(ToolOutput::ok(
        format!("{} link(s)", links.len()),
        json!({"total": links.len(), "links": links}),
    ))
}

async fn extract_metadata(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: SourceInput = parse(input)?;
    let (html, base) = source(&svc, &i).await?;
    let meta = parsed(html, move |doc| html::metadata(doc, base.as_ref())).await?;
    let title = meta["title"].as_str().unwrap_or("(no title)").to_owned();
    Ok(ToolOutput::ok(format!("Metadata of '{title}'"), meta))
}

async fn extract_tables(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: SourceInput = parse(input)?;
    let (html, _) = source(&svc, &i).await?;
    let (mt, mr) = (i.max_tables.unwrap_or(20), i.max_rows.unwrap_or(1000));
    let tables = parsed(html, move |doc| html::tables(doc, mt, mr)).await?;
    Ok(ToolOutput::ok(
        format!("{} table(s)", tables.len()),
        json!({"total": tables.len(), "tables": tables}),
    ))
}
