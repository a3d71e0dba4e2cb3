//! Text out of an uploaded document (contract §2.8 upload): Markdown and plain text as they
//! are, CSV as one `header: value, …` line per data row (as upstream). Bytes that are not UTF-8
//! are replaced (U+FFFD) rather than refused; NUL bytes, which PostgreSQL cannot store, are
//! dropped. PDF: the text of its pages, separated by blank lines
//! ([`gathering_tools::pdf`], the extractor of the `pdf` skill: bounded pages and decompressed
//! content); a PDF it cannot read gives no text, which the upload answers with 400.

/// A document format the upload knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Text,
    Csv,
    Pdf,
}

impl Format {
    /// The `format` the upload answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Text => "txt",
            Format::Csv => "csv",
            Format::Pdf => "pdf",
        }
    }

    /// By file extension, else by content type (as upstream).
    pub fn detect(filename: &str, content_type: Option<&str>) -> Option<Format> {
        let ext = filename
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "md" | "markdown" => return Some(Format::Markdown),
            "txt" => return Some(Format::Text),
            "csv" => return Some(Format::Csv),
            "pdf" => return Some(Format::Pdf),
            _ => {}
        }
        let essence = content_type?
            .split(';')
            .next()
            .map(|s| s.trim().to_ascii_lowercase())?;
        match essence.as_str() {
            "text/plain" => Some(Format::Text),
            "text/markdown" => Some(Format::Markdown),
            "text/csv" => Some(Format::Csv),
            "application/pdf" => Some(Format::Pdf),
            _ => None,
        }
    }
}

/// UTF-8 text of `bytes`, lossy, without NUL bytes or a leading byte-order mark.
pub fn decode(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    text.replace('\0', "")
}

/// Characters of a PDF's text kept (a 10 MB text file holds at most as many).
const PDF_MAX_CHARS: usize = 10 * 1024 * 1024;

/// The text of a document (`None` when a PDF cannot be read).
pub fn extract(format: Format, bytes: &[u8]) -> Option<String> {
    match format {
        Format::Markdown | Format::Text => Some(decode(bytes)),
        Format::Csv => Some(csv_text(&decode(bytes))),
        Format::Pdf => gathering_tools::pdf::full_text(bytes, PDF_MAX_CHARS).ok(),
    }
}

/// Parses CSV (RFC 4180, with the `csv` crate: quoted fields with `""` escapes and line breaks,
/// `\r\n` or `\n` record ends; rows may have any number of fields; blank lines are skipped).
/// A malformed tail ends the parse rather than the upload: what was read is kept.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .into_records()
        .map_while(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect()
}

/// One line per data row: `header: value` for each non-blank value, joined with `, `; the first
/// row is the header (columns past it are `col{i}`); rows with nothing are left out.
pub fn csv_text(text: &str) -> String {
    let rows = parse_csv(text);
    let Some((headers, data)) = rows.split_first() else {
        return String::new();
    };
    let mut lines = Vec::with_capacity(data.len());
    for row in data {
        let parts: Vec<String> = row
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(i, v)| match headers.get(i) {
                Some(h) => format!("{h}: {v}"),
                None => format!("col{i}: {v}"),
            })
            .collect();
        if !parts.is_empty() {
            lines.push(parts.join(", "));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_extension_then_content_type() {
        assert_eq!(Format::detect("a.MD", None), Some(Format::Markdown));
        assert_eq!(Format::detect("a.markdown", None), Some(Format::Markdown));
        assert_eq!(Format::detect("notes.txt", None), Some(Format::Text));
        assert_eq!(
            Format::detect("t.csv", Some("application/pdf")),
            Some(Format::Csv)
        );
        assert_eq!(Format::detect("doc.pdf", None), Some(Format::Pdf));
        assert_eq!(
            Format::detect("blob", Some("text/plain; charset=utf-8")),
            Some(Format::Text)
        );
        assert_eq!(
            Format::detect("x.exe", Some("application/octet-stream")),
            None
        );
        assert_eq!(Format::detect("x.exe", None), None);
    }

    #[test]
    fn csv_rows_become_header_value_lines() {
        let csv = "name,role,notes\r\nAda,dev,\"likes \"\"Rust\"\", a lot\"\n\nBob,,\n,,\nEve,ops,x,extra\n";
        assert_eq!(
            csv_text(csv),
            "name: Ada, role: dev, notes: likes \"Rust\", a lot\nname: Bob\nname: Eve, role: ops, notes: x, col3: extra"
        );
        assert_eq!(csv_text(""), "");
        assert_eq!(csv_text("only,headers\n"), "");
    }

    #[test]
    fn quoted_fields_keep_line_breaks() {
        assert_eq!(csv_text("a,b\n\"x\ny\",z"), "a: x\ny, b: z");
    }

    #[test]
    fn pdf_text_is_extracted() {
        let pdf = gathering_tools::pdf::create(None, "Quarterly report\nrevenue grew").unwrap();
        let text = extract(Format::Pdf, &pdf).unwrap();
        assert!(text.contains("Quarterly report\nrevenue grew"), "{text}");
        assert_eq!(extract(Format::Pdf, b"%PDF-1.7"), None);
    }

    #[test]
    fn decoding_is_lossy_and_drops_nul() {
        assert_eq!(decode(b"\xef\xbb\xbfhi\0 \xff"), "hi \u{fffd}");
    }
}
