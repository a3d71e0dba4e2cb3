//! HTML extraction for the web skill: readable text, links, metadata and tables. Parsing is
//! html5ever's (through `scraper`), so real-world markup (unclosed `<p>`, implicit `<tbody>`)
//! parses as a browser would. Traversal is iterative: a deeply nested document cannot overflow
//! the stack. CPU-bound: callers run these on a blocking thread.

use std::collections::BTreeSet;

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};
use serde_json::{Map, Value, json};
use url::Url;

/// Elements whose content is never readable text.
const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
    "iframe", "button", "select", "canvas", "head", "object", "embed",
];

/// Elements that end a line of text.
const BLOCK: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "br",
    "tr",
    "table",
    "pre",
    "blockquote",
    "hr",
    "dd",
    "dt",
    "figcaption",
    "title",
    "body",
];

fn selector(s: &str) -> Option<Selector> {
    Selector::parse(s).ok()
}

fn first<'a>(doc: &'a Html, css: &str) -> Option<ElementRef<'a>> {
    selector(css).and_then(|s| doc.select(&s).next())
}

fn clean(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn title(doc: &Html) -> Option<String> {
    first(doc, "title")
        .map(|t| clean(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty())
}

/// The page's main text: the first `<article>`, else `<main>`, else `[role=main]`, else
/// `<body>`; navigation, scripts, forms and the like left out; one paragraph per line.
pub fn readable_text(doc: &Html) -> String {
    let container = first(doc, "article")
        .or_else(|| first(doc, "main"))
        .or_else(|| first(doc, "[role=main]"))
        .or_else(|| first(doc, "body"))
        .unwrap_or_else(|| doc.root_element());
    let mut out = String::new();
    let mut line = String::new();
    let mut skip_depth = 0usize;
    let flush = |line: &mut String, out: &mut String| {
        let l = clean(line);
        if !l.is_empty() {
            out.push_str(&l);
            out.push('\n');
        }
        line.clear();
    };
    for edge in container.traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) => {
                    let name = e.name();
                    if skip_depth > 0
                        || SKIP.contains(&name)
                        || e.attr("hidden").is_some()
                        || e.attr("aria-hidden") == Some("true")
                    {
                        skip_depth += 1;
                    } else if BLOCK.contains(&name) {
                        flush(&mut line, &mut out);
                        if name == "li" {
                            line.push_str("- ");
                        }
                    }
                }
                Node::Text(t) if skip_depth == 0 => {
                    line.push_str(t);
                }
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(e) = node.value() {
                    if skip_depth > 0 {
                        skip_depth -= 1;
                    } else if BLOCK.contains(&e.name()) {
                        flush(&mut line, &mut out);
                    }
                }
            }
        }
    }
    flush(&mut line, &mut out);
    out.trim_end().to_owned()
}

/// Every `<a href>` as an absolute http(s) URL, de-duplicated, with its text.
pub fn links(doc: &Html, base: Option<&Url>, limit: usize) -> Vec<Value> {
    let Some(sel) = selector("a[href]") else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for a in doc.select(&sel) {
        let Some(href) = a.attr("href").map(str::trim) else {
            continue;
        };
        if href.is_empty()
            || href.starts_with('#')
            || href.starts_with("javascript:")
            || href.starts_with("mailto:")
        {
            continue;
        }
        let url = match base {
            Some(b) => b.join(href).ok(),
            None => Url::parse(href).ok(),
        };
        let Some(url) = url.filter(|u| matches!(u.scheme(), "http" | "https")) else {
            continue;
        };
        if !seen.insert(url.to_string()) {
            continue;
        }
        let internal = base.is_some_and(|b| b.host_str() == url.host_str());
        out.push(json!({
            "url": url.as_str(),
            "text": clean(&a.text().collect::<String>()),
            "rel": a.attr("rel"),
            "internal": internal,
        }));
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Title, description, keywords, canonical URL, language, Open Graph and Twitter cards,
/// favicon.
pub fn metadata(doc: &Html, base: Option<&Url>) -> Value {
    let meta =
        |css: &str| first(doc, css).and_then(|e| e.attr("content").map(|s| s.trim().to_owned()));
    let abs = |href: Option<&str>| -> Option<String> {
        let href = href?;
        match base {
            Some(b) => b.join(href).ok().map(|u| u.to_string()),
            None => Some(href.to_owned()),
        }
    };
    let mut og = Map::new();
    let mut twitter = Map::new();
    if let Some(sel) = selector("meta[property], meta[name]") {
        for m in doc.select(&sel) {
            let key = m.attr("property").or_else(|| m.attr("name")).unwrap_or("");
            let Some(content) = m.attr("content") else {
                continue;
            };
            if let Some(k) = key.strip_prefix("og:") {
                og.insert(k.to_owned(), json!(content.trim()));
            } else if let Some(k) = key.strip_prefix("twitter:") {
                twitter.insert(k.to_owned(), json!(content.trim()));
            }
        }
    }
    json!({
        "title": title(doc),
        "description": meta("meta[name=description]"),
        "keywords": meta("meta[name=keywords]").map(|k| k.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect::<Vec<_>>()),
        "author": meta("meta[name=author]"),
        "canonical": abs(first(doc, "link[rel=canonical]").and_then(|e| e.attr("href"))),
        "language": first(doc, "html").and_then(|e| e.attr("lang").map(str::to_owned)),
        "charset": first(doc, "meta[charset]").and_then(|e| e.attr("charset").map(str::to_owned)),
        "favicon": abs(first(doc, "link[rel~=icon]").and_then(|e| e.attr("href"))),
        "open_graph": og,
        "twitter": twitter,
    })
}

/// Tables as `{caption, headers, rows}`; headers come from `<th>` cells of the first row
/// (or `<thead>`).
pub fn tables(doc: &Html, max_tables: usize, max_rows: usize) -> Vec<Value> {
    let (Some(tsel), Some(rsel), Some(csel), Some(capsel)) = (
        selector("table"),
        selector("tr"),
        selector("th, td"),
        selector("caption"),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for table in doc.select(&tsel).take(max_tables) {
        let mut headers: Vec<String> = Vec::new();
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut truncated = false;
        for (i, tr) in table.select(&rsel).enumerate() {
            // Rows of nested tables belong to those tables.
            if tr
                .ancestors()
                .filter_map(ElementRef::wrap)
                .find(|a| a.value().name() == "table")
                != Some(table)
            {
                continue;
            }
            let cells: Vec<ElementRef> = tr
                .select(&csel)
                .filter(|c| c.parent() == Some(*tr))
                .collect();
            let texts: Vec<String> = cells
                .iter()
                .map(|c| clean(&c.text().collect::<String>()))
                .collect();
            if i == 0
                && headers.is_empty()
                && !cells.is_empty()
                && cells.iter().all(|c| c.value().name() == "th")
            {
                headers = texts;
                continue;
            }
            if rows.len() >= max_rows {
                truncated = true;
                break;
            }
            rows.push(texts);
        }
        out.push(json!({
            "caption": table.select(&capsel).next().map(|c| clean(&c.text().collect::<String>())),
            "headers": headers,
            "rows": rows,
            "row_count": rows.len(),
            "truncated": truncated,
        }));
    }
    out
}
