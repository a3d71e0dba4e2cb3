//! `POST /memories/knowledge/upload` (contract §2.8): a Markdown, text, CSV or PDF document into the
//! knowledge base. A text over 3000 characters is split into overlapping chunks (A6): the main
//! entry then holds `[Document with N chunks]` and a 500-character preview, and each chunk is
//! an entry of its own (`"{title} (chunk i/N)"`, tagged `doc:{main_id}` and `chunk`, source
//! `file://{filename}#chunk-{i}`), all written in one transaction.
//!
//! Limits: the file at most 10 MB (413 beyond, without reading the rest), other form fields at
//! most 64 KB, at most 16 parts, 60 s to receive the whole form. A PDF gives the text of its
//! pages; one that cannot be read (or holds only images) answers 400 like an empty document.

use crate::openapi::Detail;
use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::{HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde_json::json;

use super::chunk::{self, Chunk};
use super::extract::{self, Format};
use super::knowledge::{self, Common, NewEntry, TITLE_MAX};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError, Violations};
use crate::routes::catalogue::input::line_ok;
use crate::state::AppState;

pub const FILE_MAX: usize = 10 * 1024 * 1024;
const FIELD_MAX: usize = 64 * 1024;
const PARTS_MAX: usize = 16;
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Characters of the document the main entry shows when it is chunked.
const PREVIEW: usize = 500;

/// The form as received.
#[derive(Default)]
struct RawForm {
    file: Option<Vec<u8>>,
    filename: Option<String>,
    content_type: Option<String>,
    fields: Vec<(String, String)>,
}

impl RawForm {
    /// A text field; an empty one counts as absent (browsers send empty inputs).
    fn text(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }
}

fn too_large(what: &str, limit: &str) -> HttpResponse {
    HttpResponse::PayloadTooLarge()
        .json(json!({"detail": format!("{what} is too large (at most {limit})")}))
}

fn bad(msg: impl Into<String>) -> HttpResponse {
    ApiError::BadRequest(msg.into()).error_response()
}

/// Reads every part, refusing as soon as a limit is passed.
async fn receive(payload: &mut Multipart) -> Result<RawForm, HttpResponse> {
    let mut form = RawForm::default();
    let mut parts = 0;
    while let Some(item) = payload.next().await {
        let mut field = item.map_err(|e| bad(format!("Invalid multipart/form-data body: {e}")))?;
        parts += 1;
        if parts > PARTS_MAX {
            return Err(bad("Too many form fields"));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = name == "file";
        let limit = if is_file { FILE_MAX } else { FIELD_MAX };
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad(format!("Invalid multipart/form-data body: {e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(if is_file {
                    too_large("The file", "10 MB")
                } else {
                    too_large(&format!("Form field '{name}'"), "64 KB")
                });
            }
            buf.extend_from_slice(&chunk);
        }
        if is_file {
            form.filename = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .map(str::to_owned);
            form.content_type = field.content_type().map(ToString::to_string);
            form.file = Some(buf);
        } else {
            let value = String::from_utf8(buf).map_err(|_| {
                ApiError::Validation(vec![FieldError::body(&name, "must be UTF-8 text")])
                    .error_response()
            })?;
            form.fields.push((name, value));
        }
    }
    Ok(form)
}

/// A form boolean as FastAPI reads one.
fn flag(form: &RawForm, name: &str, default: bool, v: &mut Violations) -> bool {
    match form.text(name).map(|s| s.trim().to_ascii_lowercase()) {
        None => default,
        Some(s) if matches!(s.as_str(), "true" | "1" | "yes" | "on" | "t" | "y") => true,
        Some(s) if matches!(s.as_str(), "false" | "0" | "no" | "off" | "f" | "n") => false,
        Some(_) => {
            v.push(FieldError::body(name, "Input should be a valid boolean"));
            default
        }
    }
}

/// The file's own name, without any directory a client put in front of it.
fn base_name(raw: &str) -> String {
    raw.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

#[utoipa::path(
    post,
    path = "/memories/knowledge/upload",
    request_body(content = Value, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "`{id, title, filename, format, char_count, chunk_count, category?, tags?}`", body = Object),
        (status = 400, description = "Refused", body = Detail),
    ),
)]
pub async fn upload(
    state: web::Data<AppState>,
    _user: AuthUser,
    mut payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let form = match tokio::time::timeout(RECEIVE_TIMEOUT, receive(&mut payload)).await {
        Ok(Ok(form)) => form,
        Ok(Err(refusal)) => return Ok(refusal),
        Err(_) => {
            return Ok(HttpResponse::RequestTimeout()
                .json(json!({"detail": "The upload took too long to arrive"})));
        }
    };
    let (bytes, filename, format) = document(&form)?;
    let f = fields(&form, &filename)?;
    let (text, chunks) = parse(format, bytes, f.chunk_large_docs).await?;
    let n = chunks.len();
    let (main_content, chunked) = entries(&f.title, &text, chunks);
    let mut embed_texts = vec![format!("{}\n\n{main_content}", f.title)];
    embed_texts.extend(chunked.iter().map(|(t, c)| format!("{t}\n\n{}", c.content)));
    let vectors = knowledge::embed(&state.agents.llm, &embed_texts).await;

    let common = Common {
        category: f.category.clone(),
        project_id: None,
        circle_id: None,
        is_global: f.is_global,
        author_agent_id: f.author_agent_id,
        parent_id: None,
    };
    let main = NewEntry {
        title: f.title.clone(),
        content: main_content,
        tags: f.tags.clone().unwrap_or_default(),
        source_url: Some(format!("file://{filename}")),
        chunk_index: None,
    };
    let main_id = store(&state, common, &filename, main, chunked, vectors).await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": main_id,
        "title": f.title,
        "filename": filename,
        "format": format.as_str(),
        "char_count": text.chars().count(),
        "chunk_count": n,
        "category": f.category,
        "tags": f.tags,
    })))
}

/// The uploaded file: its bytes, its name (without directories) and its format.
fn document(form: &RawForm) -> Result<(&[u8], String, Format), ApiError> {
    let Some(bytes) = form.file.as_deref() else {
        return Err(ApiError::Validation(vec![FieldError {
            kind: "missing".into(),
            ..FieldError::body("file", "Field required")
        }]));
    };
    let filename = form.filename.as_deref().map(base_name).unwrap_or_default();
    if filename.is_empty() {
        return Err(ApiError::BadRequest("Filename is required".into()));
    }
    let Some(format) = Format::detect(&filename, form.content_type.as_deref()) else {
        return Err(ApiError::BadRequest(
            "Unsupported file format. Supported: .md, .markdown, .txt, .csv, .pdf".into(),
        ));
    };
    Ok((bytes, filename, format))
}

/// The form's other fields, checked (with the file's name) in one 422.
struct Fields {
    title: String,
    category: Option<String>,
    tags: Option<Vec<String>>,
    is_global: bool,
    chunk_large_docs: bool,
    author_agent_id: Option<i64>,
}

fn fields(form: &RawForm, filename: &str) -> Result<Fields, ApiError> {
    let mut v = Violations::new();
    v.check(
        line_ok(filename, 1, 255),
        "file",
        "the file name must be at most 255 characters",
    );
    let title = form
        .text("title")
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| filename.to_owned());
    v.check(
        line_ok(&title, 1, TITLE_MAX),
        "title",
        "title must be 1 to 500 characters",
    );
    let category = form.text("category").map(|c| c.trim().to_owned());
    let tags: Option<Vec<String>> = form.text("tags").map(|t| {
        t.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    knowledge::check_entry_fields(&mut v, &category, &tags, &None);
    let is_global = flag(form, "is_global", false, &mut v);
    let chunk_large_docs = flag(form, "chunk_large_docs", true, &mut v);
    let author_agent_id = match form
        .text("author_agent_id")
        .map(|s| s.trim().parse::<i64>())
    {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            v.push(FieldError::body(
                "author_agent_id",
                "Input should be a valid integer",
            ));
            None
        }
    };
    v.finish()?;
    Ok(Fields {
        title,
        category,
        tags,
        is_global,
        chunk_large_docs,
        author_agent_id,
    })
}

/// The document's text and its chunks; 400 when there is no text.
async fn parse(
    format: Format,
    bytes: &[u8],
    chunk_large_docs: bool,
) -> Result<(String, Vec<Chunk>), ApiError> {
    // Decoding, CSV and PDF parsing and chunking a 10 MB document are CPU work: off the event
    // loop.
    let owned = bytes.to_vec();
    let (text, chunks): (String, Vec<Chunk>) = web::block(move || {
        let text = extract::extract(format, &owned).unwrap_or_default();
        let chunks = chunk::split(&text, chunk_large_docs);
        (text, chunks)
    })
    .await
    .map_err(ApiError::internal)?;
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "Document is empty or could not be parsed".into(),
        ));
    }
    Ok((text, chunks))
}

/// The main entry's content (the whole text, or a preview when there are several chunks) and,
/// when there are several, each chunk with its title.
fn entries(title: &str, text: &str, chunks: Vec<Chunk>) -> (String, Vec<(String, Chunk)>) {
    let n = chunks.len();
    if n == 1 {
        return (text.to_owned(), Vec::new());
    }
    let preview: String = text.chars().take(PREVIEW).collect();
    let chunked = chunks
        .into_iter()
        .map(|c| (format!("{title} (chunk {}/{n})", c.index + 1), c))
        .collect();
    (
        format!("[Document with {n} chunks]\n\n{preview}..."),
        chunked,
    )
}

/// Writes the main entry, then its chunks (children of it, tagged `doc:{main_id}` and `chunk`),
/// in one transaction; `vectors` are the main entry's embedding then the chunks'. The main
/// entry's id.
async fn store(
    state: &AppState,
    mut common: Common,
    filename: &str,
    main: NewEntry,
    chunked: Vec<(String, Chunk)>,
    mut vectors: Vec<Option<Vec<f32>>>,
) -> Result<i64, ApiError> {
    let chunk_vectors = vectors.split_off(1);
    let mut chunk_tags = main.tags.clone();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let main_id = knowledge::insert(&tx, &common, &[main], &vectors)
        .await?
        .first()
        .copied()
        .ok_or_else(|| ApiError::internal("document not stored"))?;
    if !chunked.is_empty() {
        common.parent_id = Some(main_id);
        chunk_tags.push(format!("doc:{main_id}"));
        chunk_tags.push("chunk".into());
        let entries: Vec<NewEntry> = chunked
            .into_iter()
            .map(|(t, c)| NewEntry {
                title: t,
                content: c.content,
                tags: chunk_tags.clone(),
                source_url: Some(format!("file://{filename}#chunk-{}", c.index)),
                chunk_index: i32::try_from(c.index).ok(),
            })
            .collect();
        knowledge::insert(&tx, &common, &entries, &chunk_vectors).await?;
    }
    tx.commit().await?;
    Ok(main_id)
}
