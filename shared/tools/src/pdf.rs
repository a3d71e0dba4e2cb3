//! PDF documents: page count, metadata and text (lopdf, pure Rust), and a plain-text PDF
//! writer. The one implementation behind the `pdf` skill and the knowledge upload of the edge.
//!
//! A PDF is untrusted input: the caller bounds its size (at most [`MAX_PDF_BYTES`]), every
//! page's decompressed content is bounded ([`MAX_PAGE_CONTENT`], so a small deflate bomb cannot
//! inflate without limit), at most [`MAX_PAGES`] pages are read, and the text kept is capped.
//! Parsing is CPU work: callers run these functions on a blocking thread.

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};
use serde::Serialize;

use crate::error::ToolError;

/// Largest PDF read.
pub const MAX_PDF_BYTES: usize = 10 * 1024 * 1024;
/// Most pages whose text is extracted in one call.
pub const MAX_PAGES: usize = 2000;
/// Largest decompressed content of one page.
pub const MAX_PAGE_CONTENT: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct PdfInfo {
    pub version: String,
    pub pages: usize,
    pub encrypted: bool,
    pub title: Option<String>,
    pub author: Option<String>,
    pub subject: Option<String>,
    pub keywords: Option<String>,
    pub creator: Option<String>,
    pub producer: Option<String>,
    pub creation_date: Option<String>,
    pub modification_date: Option<String>,
}

/// The text of some pages.
#[derive(Debug, Clone, Serialize)]
pub struct PageText {
    /// 1-based.
    pub page: u32,
    pub text: String,
}

fn load(bytes: &[u8]) -> Result<Document, ToolError> {
    if bytes.len() > MAX_PDF_BYTES {
        return Err(ToolError::TooLarge(format!(
            "the PDF is larger than {MAX_PDF_BYTES} bytes"
        )));
    }
    if !bytes.starts_with(b"%PDF-") {
        return Err(ToolError::InvalidInput(
            "not a PDF document (no %PDF- header)".into(),
        ));
    }
    Document::load_mem(bytes)
        .map_err(|e| ToolError::InvalidInput(format!("the PDF cannot be read: {e}")))
}

fn info_string(info: &Dictionary, key: &[u8]) -> Option<String> {
    let obj = info.get(key).ok()?;
    lopdf::decode_text_string(obj)
        .ok()
        .map(|s| s.replace('\0', "").trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Version, page count, encryption and the document information dictionary.
pub fn info(bytes: &[u8]) -> Result<PdfInfo, ToolError> {
    let doc = load(bytes)?;
    let dict = doc
        .trailer
        .get(b"Info")
        .ok()
        .and_then(|o| match o {
            Object::Reference(id) => doc.get_dictionary(*id).ok(),
            Object::Dictionary(d) => Some(d),
            _ => None,
        })
        .cloned()
        .unwrap_or_default();
    Ok(PdfInfo {
        version: doc.version.clone(),
        pages: doc.get_pages().len(),
        encrypted: doc.is_encrypted(),
        title: info_string(&dict, b"Title"),
        author: info_string(&dict, b"Author"),
        subject: info_string(&dict, b"Subject"),
        keywords: info_string(&dict, b"Keywords"),
        creator: info_string(&dict, b"Creator"),
        producer: info_string(&dict, b"Producer"),
        creation_date: info_string(&dict, b"CreationDate"),
        modification_date: info_string(&dict, b"ModDate"),
    })
}

/// The text of pages `first..=last` (1-based, clamped to the document), at most `max_chars`
/// characters in all; returns the pages, the page count and whether the text was cut.
pub fn text(
    bytes: &[u8],
    first: u32,
    last: Option<u32>,
    max_chars: usize,
) -> Result<(Vec<PageText>, usize, bool), ToolError> {
    let doc = load(bytes)?;
    let pages = doc.get_pages();
    let count = pages.len();
    let last = last.unwrap_or(u32::MAX);
    let mut out = Vec::new();
    let mut used = 0usize;
    let mut truncated = false;
    for (&n, _) in pages.range(first.max(1)..=last).take(MAX_PAGES) {
        if used >= max_chars {
            truncated = true;
            break;
        }
        // A page lopdf cannot decode (unknown font encoding, broken stream) yields no text
        // rather than failing the whole document.
        let raw = doc
            .extract_text_with_limit(&[n], MAX_PAGE_CONTENT)
            .unwrap_or_default();
        let mut text = clean(&raw);
        let room = max_chars - used;
        if text.chars().count() > room {
            text = text.chars().take(room).collect();
            truncated = true;
        }
        used += text.chars().count();
        out.push(PageText { page: n, text });
    }
    Ok((out, count, truncated))
}

/// The whole text of a document, pages separated by a blank line (knowledge upload).
pub fn full_text(bytes: &[u8], max_chars: usize) -> Result<String, ToolError> {
    let (pages, _, _) = text(bytes, 1, None, max_chars)?;
    Ok(pages
        .into_iter()
        .map(|p| p.text)
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n"))
}

/// Lines trimmed at their end, runs of blank lines collapsed, NUL bytes dropped (PostgreSQL
/// cannot store them).
fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank = 0;
    for line in raw.replace('\0', "").lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_owned()
}

/// Characters of one line of the PDFs [`create`] writes (Courier 11 on A4 with 50 pt margins).
const LINE_CHARS: usize = 80;
const LINES_PER_PAGE: usize = 60;

/// A PDF of plain text: Courier on A4 pages, lines wrapped at 80 characters; the title goes to
/// the information dictionary. Characters outside Latin-1 are written as `?` (the standard
/// Type 1 fonts have no other glyphs).
pub fn create(title: Option<&str>, text: &str) -> Result<Vec<u8>, ToolError> {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            lines.push(String::new());
        }
        for chunk in chars.chunks(LINE_CHARS) {
            lines.push(chunk.iter().collect());
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Courier",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {"Font" => dictionary! {"F1" => font_id}});
    let mut kids = Vec::new();
    for page_lines in lines.chunks(LINES_PER_PAGE) {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 11.into()]),
            Operation::new("TL", vec![12.into()]),
            Operation::new("Td", vec![50.into(), 790.into()]),
        ];
        for line in page_lines {
            let latin1: Vec<u8> = line
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect();
            ops.push(Operation::new("Tj", vec![Object::string_literal(latin1)]));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops }
            .encode()
            .map_err(|e| ToolError::Failed(format!("PDF content: {e}")))?;
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(Object::Reference(page_id));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
    doc.trailer.set("Root", catalog_id);
    let mut info = dictionary! {"Producer" => lopdf::text_string("GatheRing")};
    if let Some(t) = title {
        info.set("Title", lopdf::text_string(t));
    }
    let info_id = doc.add_object(info);
    doc.trailer.set("Info", info_id);
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out)
        .map_err(|e| ToolError::Failed(format!("PDF write: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_pdf_reads_back() {
        let long: String = (0..130).map(|i| format!("line {i}\n")).collect();
        let bytes = create(Some("Über title"), &format!("Hello PDF world\n{long}")).unwrap();
        let i = info(&bytes).unwrap();
        assert_eq!(i.pages, 3);
        assert_eq!(i.title.as_deref(), Some("Über title"));
        assert_eq!(i.producer.as_deref(), Some("GatheRing"));
        let (pages, count, truncated) = text(&bytes, 1, Some(1), 100_000).unwrap();
        assert_eq!((pages.len(), count, truncated), (1, 3, false));
        assert!(pages[0].text.contains("Hello PDF world"), "{:?}", pages[0]);
        let all = full_text(&bytes, 100_000).unwrap();
        assert!(all.contains("line 129"), "{all}");
        let (pages, _, truncated) = text(&bytes, 1, None, 20).unwrap();
        assert!(truncated);
        assert_eq!(
            pages.iter().map(|p| p.text.chars().count()).sum::<usize>(),
            20
        );
    }

    #[test]
    fn refuses_what_is_not_a_pdf() {
        assert_eq!(info(b"hello").unwrap_err().code(), "invalid_input");
        assert_eq!(
            info(b"%PDF-1.7 broken").unwrap_err().code(),
            "invalid_input"
        );
    }
}
