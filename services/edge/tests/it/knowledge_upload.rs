//! Document upload into the knowledge base through a real edge: multipart forms (written by
//! hand, so tests also send what a browser would not), PDF text, A6 chunking, tokens and authors.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_crud::open_edge;
use crate::support::{Api, Auth, Edge, start_auth, start_edge};

/// One part of a multipart form.
pub(crate) struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    content_type: Option<&'a str>,
    body: &'a [u8],
}

impl<'a> Part<'a> {
    pub(crate) fn file(filename: &'a str, content_type: &'a str, body: &'a [u8]) -> Self {
        Part {
            name: "file",
            filename: Some(filename),
            content_type: Some(content_type),
            body,
        }
    }

    pub(crate) fn field(name: &'a str, value: &'a str) -> Self {
        Part {
            name,
            filename: None,
            content_type: None,
            body: value.as_bytes(),
        }
    }
}

/// `multipart/form-data`, written by hand so tests can also send what a browser would not.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----gathering-test-7d1f0c";
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if let Some(f) = p.filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = p.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(p.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn upload(api: &Api, parts: &[Part<'_>]) -> crate::support::Reply {
    let (content_type, body) = multipart(parts);
    api.send(
        api.client
            .post(format!("{}/memories/knowledge/upload", api.base))
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

struct Entry {
    title: String,
    content: String,
    tags: Vec<String>,
    source_url: Option<String>,
    parent_id: Option<i64>,
    is_global: bool,
    category: Option<String>,
}

async fn entries(db: &TestDb) -> Vec<(i64, Entry)> {
    db.pool(1)
        .get()
        .await
        .unwrap()
        .query(
            "SELECT id, title, content, tags, source_url, parent_id, is_global, category \
             FROM memory.knowledge_base ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                Entry {
                    title: r.get(1),
                    content: r.get(2),
                    tags: r.get(3),
                    source_url: r.get(4),
                    parent_id: r.get(5),
                    is_global: r.get(6),
                    category: r.get(7),
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn upload_pdf_is_chunked_and_searchable() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    // Two pages of text, over the 3000 characters that make a document chunked.
    let text: String = (1..=100)
        .map(|i| format!("Line {i} of the quarterly report on the zanzibar harbour project.\n"))
        .collect();
    let pdf = gathering_tools::pdf::create(Some("Quarterly report"), &text).unwrap();
    let r = upload(
        &api,
        &[
            Part::file("report.pdf", "application/pdf", &pdf),
            Part::field("title", "Quarterly report"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["format"], "pdf");
    let chunks = r.body["chunk_count"].as_i64().unwrap();
    assert!(chunks >= 2, "{:?}", r.body);
    let rows = entries(&db).await;
    assert_eq!(rows.len() as i64, chunks + 1);
    assert!(
        rows[0]
            .1
            .content
            .starts_with(&format!("[Document with {chunks} chunks]"))
    );
    assert!(
        rows[1].1.content.contains("Line 1 of the quarterly report"),
        "{}",
        rows[1].1.content
    );
    assert!(
        rows.last()
            .unwrap()
            .1
            .content
            .contains("Line 100 of the quarterly report")
    );

    let r = api
        .post(
            "/memories/knowledge/search",
            None,
            &json!({"query": "zanzibar harbour"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let found = r.body["results"].as_array().unwrap();
    assert!(!found.is_empty(), "{:?}", r.body);
    assert!(
        found
            .iter()
            .all(|k| k["title"].as_str().unwrap().starts_with("Quarterly report")),
        "{:?}",
        r.body
    );

    edge.stop().await;
    auth.stop().await;
}

#[tokio::test]
async fn upload_chunks_long_documents_as_a6_says() {
    let db = TestDb::new().await;
    let (auth, edge) = open_edge(&db).await;
    let api = edge.api();

    // 5000 characters with blank lines at 1500 and 3302. The first chunk ends after the blank
    // line at 1500 (beyond half a chunk); the second, from 1302, finds no blank line or sentence
    // end beyond its half and ends at 3302 (2000 characters); the third, from 3102, runs to the
    // end.
    let doc = format!(
        "{}\n\n{}\n\n{}",
        "a".repeat(1500),
        "b".repeat(1800),
        "c".repeat(1696)
    );
    assert_eq!(doc.chars().count(), 5000);
    let r = upload(
        &api,
        &[
            Part::file("../../notes/guide.md", "text/markdown", doc.as_bytes()),
            Part::field("tags", "ops, runbook,,"),
            Part::field("category", "docs"),
            Part::field("is_global", "true"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let main = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.body,
        json!({"id": main, "title": "guide.md", "filename": "guide.md", "format": "markdown",
               "char_count": 5000, "chunk_count": 3, "category": "docs", "tags": ["ops", "runbook"]})
    );
    let rows = entries(&db).await;
    assert_eq!(rows.len(), 4);
    let (id, m) = &rows[0];
    assert_eq!(*id, main);
    let preview: String = doc.chars().take(500).collect();
    assert_eq!(
        m.content,
        format!("[Document with 3 chunks]\n\n{preview}...")
    );
    assert_eq!(
        (m.source_url.as_deref(), m.tags.clone(), m.parent_id),
        (
            Some("file://guide.md"),
            vec!["ops".to_owned(), "runbook".to_owned()],
            None
        )
    );
    let chars: Vec<char> = doc.chars().collect();
    let spans = [(0, 1502), (1302, 3302), (3102, 5000)];
    for (i, (_, c)) in rows[1..].iter().enumerate() {
        let (s, e) = spans[i];
        let expected: String = chars[s..e].iter().collect();
        assert_eq!(c.content, expected.trim(), "chunk {i}");
        assert!(c.content.chars().count() <= 2000);
        assert_eq!(c.title, format!("guide.md (chunk {}/3)", i + 1));
        assert_eq!(
            c.tags,
            vec![
                "ops".to_owned(),
                "runbook".to_owned(),
                format!("doc:{main}"),
                "chunk".to_owned()
            ]
        );
        assert_eq!(
            c.source_url.as_deref(),
            Some(format!("file://guide.md#chunk-{i}").as_str())
        );
        assert_eq!(
            (c.parent_id, c.is_global, c.category.as_deref()),
            (Some(main), true, Some("docs"))
        );
    }

    // Up to 3000 characters, or with chunking off: one entry holding the whole text.
    let short = "b".repeat(3000);
    let r = upload(
        &api,
        &[
            Part::file("short.txt", "text/plain", short.as_bytes()),
            Part::field("title", "Short one"),
        ],
    )
    .await;
    assert_eq!(
        (
            r.body["chunk_count"].as_i64(),
            r.body["format"].as_str(),
            r.body["tags"].clone()
        ),
        (Some(1), Some("txt"), Value::Null)
    );
    let r = upload(
        &api,
        &[
            Part::file("long.txt", "text/plain", doc.as_bytes()),
            Part::field("chunk_large_docs", "false"),
        ],
    )
    .await;
    assert_eq!(r.body["chunk_count"], 1);
    let rows = entries(&db).await;
    assert_eq!(rows.len(), 6);
    assert_eq!(
        (
            rows[4].1.title.as_str(),
            rows[4].1.content.as_str(),
            rows[4].1.source_url.as_deref()
        ),
        ("Short one", short.as_str(), Some("file://short.txt"))
    );
    assert_eq!(rows[5].1.content, doc);

    // CSV becomes "header: value" lines.
    let r = upload(
        &api,
        &[Part::file(
            "team.csv",
            "text/csv",
            b"name,role\nAda,dev\nBob,\n",
        )],
    )
    .await;
    assert_eq!(
        (r.body["format"].as_str(), r.body["char_count"].as_i64()),
        (Some("csv"), Some(30))
    );
    assert_eq!(
        entries(&db).await.last().unwrap().1.content,
        "name: Ada, role: dev\nname: Bob"
    );

    // Refusals, each leaving the knowledge base as it was.
    let cases: Vec<(Vec<Part<'_>>, StatusCode, &str)> = vec![
        (
            vec![Part::file("paper.pdf", "application/pdf", b"%PDF-1.7")],
            StatusCode::BAD_REQUEST,
            "Document is empty or could not be parsed",
        ),
        (
            vec![Part::file("tool.exe", "application/octet-stream", b"MZ")],
            StatusCode::BAD_REQUEST,
            "Unsupported file format. Supported: .md, .markdown, .txt, .csv, .pdf",
        ),
        (
            vec![Part::file("", "text/plain", b"hello")],
            StatusCode::BAD_REQUEST,
            "Filename is required",
        ),
        (
            vec![Part::file("empty.md", "text/markdown", b"  \n\n ")],
            StatusCode::BAD_REQUEST,
            "Document is empty or could not be parsed",
        ),
        (
            vec![Part::field("title", "no file")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("is_global", "maybe"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("category", "gossip"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("author_agent_id", "12abc"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            vec![
                Part::file("a.md", "text/markdown", b"x"),
                Part::field("author_agent_id", "999999"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
    ];
    for (parts, status, detail) in cases {
        let r = upload(&api, &parts).await;
        assert_eq!(r.status, status, "{:?}", r.body);
        if !detail.is_empty() {
            assert!(
                r.body["detail"].as_str().unwrap().starts_with(detail),
                "{:?}",
                r.body
            );
        }
    }
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let r = upload(&api, &[Part::file("big.txt", "text/plain", &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let r = api
        .send(
            api.client
                .post(format!("{}/memories/knowledge/upload", api.base))
                .json(&json!({"file": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(entries(&db).await.len(), 7);

    edge.stop().await;
    auth.stop().await;
}

/// The upload over the network as a dashboard sends it, with an author and a token.
#[tokio::test]
async fn upload_needs_a_token_and_records_the_author() {
    let db = TestDb::new().await;
    let auth: Auth = start_auth(&db, &[]).await;
    let gateway = format!("http://127.0.0.1:{}", gathering_testkit::free_port());
    let edge: Edge = start_edge(&db, &auth, &[("LLM_GATEWAY_URL", gateway.as_str())]).await;
    let api = edge.api();
    let (content_type, body) = multipart(&[Part::file("a.md", "text/markdown", b"# Title\nbody")]);
    let r = api
        .send(
            api.client
                .post(format!("{}/memories/knowledge/upload", api.base))
                .header("content-type", content_type.clone())
                .body(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (token, _) = api.user("up@example.com", "correct horse battery").await;
    let agent = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('Ada') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    let (content_type, body) = multipart(&[
        Part::file("a.md", "text/markdown", b"# Title\nbody"),
        Part::field("author_agent_id", &agent.to_string()),
    ]);
    let r = api
        .send(
            api.client
                .post(format!("{}/api/memories/knowledge/upload", api.base))
                .bearer_auth(&token)
                .header("content-type", content_type)
                .body(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let author: Option<i64> = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one("SELECT author_agent_id FROM memory.knowledge_base", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(author, Some(agent));
    edge.stop().await;
    auth.stop().await;
}
