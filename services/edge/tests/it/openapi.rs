//! The OpenAPI document and the docs page (issue 17): `/openapi.json` is a valid OpenAPI 3.1
//! document (checked against the OpenAPI Initiative's 3.1 JSON schema, vendored in
//! `tests/data`), it names every registered route and no other, and `/docs` works offline
//! (every asset it references is served by the edge itself).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{start_auth, start_edge};

/// The documentation's own routes (`/openapi.json`, `/docs`), which are not API operations.
const DOCS_MODULE: &str = "openapi/";

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `.route("<path>", web::<method>()` in `text` (any spacing, as rustfmt splits it).
fn routes_in(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let Some(after_quote) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(end) = after_quote.find('"') else {
            continue;
        };
        let path = &after_quote[..end];
        let Some(tail) = after_quote[end + 1..].trim_start().strip_prefix(',') else {
            continue;
        };
        let Some(tail) = tail.trim_start().strip_prefix("web::") else {
            continue;
        };
        let method: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        if METHODS.contains(&method.as_str()) {
            found.push((method, path.to_owned()));
        }
    }
    found
}

/// (method, path) of every route the sources register, with the file (relative to `src/`).
fn registered_routes() -> Vec<(String, String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut all = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).unwrap();
        for (method, path) in routes_in(&text) {
            all.push((method, path, rel.clone()));
        }
    }
    all
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut set = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_some() {
                set.insert((method.to_string(), path.clone()));
            }
        }
    }
    set
}

fn document() -> Value {
    serde_json::to_value(gathering_edge::openapi::document()).unwrap()
}

#[test]
fn route_scan_reads_rustfmt_layouts() {
    let text = "cfg.route(\"/a\", web::get().to(a))\n    .route(\n        \"/b/{id}\",\n        web::delete().to(b),\n    )\n    .route(other, x)";
    assert_eq!(
        routes_in(text),
        vec![
            ("get".to_owned(), "/a".to_owned()),
            ("delete".to_owned(), "/b/{id}".to_owned())
        ]
    );
}

#[test]
fn every_registered_route_is_documented_and_nothing_else() {
    let registered = registered_routes();
    assert!(
        registered.len() > 200,
        "the scan found only {} routes: is the layout still `.route(\"path\", web::method()`?",
        registered.len()
    );
    let documented = documented_routes(&document());
    let mut missing = Vec::new();
    let mut expected = BTreeSet::new();
    for (method, path, file) in &registered {
        if file.starts_with(DOCS_MODULE) {
            continue;
        }
        let key = (method.clone(), path.clone());
        if !documented.contains(&key) {
            missing.push(format!("{} {path} ({file})", method.to_uppercase()));
        }
        expected.insert(key);
    }
    assert!(
        missing.is_empty(),
        "registered but not in /openapi.json:\n{}",
        missing.join("\n")
    );
    let unknown: Vec<_> = documented
        .iter()
        .filter(|k| !expected.contains(*k))
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(
        unknown.is_empty(),
        "in /openapi.json but not registered:\n{}",
        unknown.join("\n")
    );
}

/// Every `$ref` of the document points at something in it.
fn dangling_refs(doc: &Value, node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref"
                    && let Some(r) = v.as_str()
                {
                    let target = r.strip_prefix('#').and_then(|p| doc.pointer(p));
                    if target.is_none() {
                        out.push(r.to_owned());
                    }
                }
                dangling_refs(doc, v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dangling_refs(doc, v, out)),
        _ => {}
    }
}

fn check_document(doc: &Value) {
    let schema: Value = serde_json::from_str(include_str!("../data/openapi-3.1.schema.json"))
        .expect("OpenAPI 3.1 schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(20)
        .collect();
    assert!(
        errors.is_empty(),
        "not valid OpenAPI 3.1:\n{}",
        errors.join("\n")
    );
    assert_eq!(doc["openapi"], "3.1.0");
    let mut dangling = Vec::new();
    dangling_refs(doc, doc, &mut dangling);
    assert!(dangling.is_empty(), "dangling $ref: {dangling:?}");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        serde_json::json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    );
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            assert!(op["tags"][0].is_string(), "{method} {path} has no tag");
            let public = gathering_edge::auth::middleware::is_public(
                &method.to_uppercase().parse().unwrap(),
                path,
            );
            assert_eq!(
                op.get("security").is_none(),
                public,
                "{method} {path}: security must follow the public-route list"
            );
            assert!(
                op["responses"]["500"].is_object(),
                "{method} {path}: no 500"
            );
        }
    }
    // The error shapes of the contract.
    let field = &doc["components"]["schemas"]["FieldError"]["properties"];
    assert!(field["loc"].is_object() && field["msg"].is_object() && field["type"].is_object());
    assert!(doc["components"]["schemas"]["Detail"]["properties"]["detail"].is_object());
}

#[tokio::test]
async fn openapi_json_is_valid_openapi_3_1_and_public() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    for path in ["/openapi.json", "/api/openapi.json"] {
        // No token: the document is public.
        let r = api.get(path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        check_document(&r.body);
        assert_eq!(r.body, document(), "{path} serves the generated document");
    }
    // A documented operation with a lock is refused without a token, as documented (401).
    let r = api.get("/goals", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    edge.stop().await;
    auth.stop().await;
}

/// `src`/`href` attribute values of an HTML page.
fn references(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                refs.push(rest[..end].to_owned());
            }
        }
    }
    refs
}

#[tokio::test]
async fn docs_page_loads_everything_from_the_edge() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let client = gathering_testkit::http::client();
    for page in ["/docs", "/docs/", "/api/docs"] {
        let res = client
            .get(format!("{}{page}", edge.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{page}");
        let headers = res.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            !csp.contains("http:") && !csp.contains("https:"),
            "docs CSP allows another host: {csp}"
        );
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = res.text().await.unwrap();
        let refs = references(&html);
        assert!(
            refs.iter().any(|r| r.ends_with("swagger-ui-bundle.js")),
            "{html}"
        );
        assert!(html.contains("data-spec=\""), "{html}");
        let prefix = if page.starts_with("/api") { "/api" } else { "" };
        assert!(html.contains(&format!("data-spec=\"{prefix}/openapi.json\"")));
        for r in refs {
            assert!(
                r.starts_with('/') && !r.starts_with("//"),
                "{page} references {r}, not a path on the edge"
            );
            let asset = client
                .get(format!("{}{r}", edge.base))
                .send()
                .await
                .unwrap();
            assert_eq!(asset.status(), StatusCode::OK, "{r}");
            let kind = asset.headers()["content-type"].to_str().unwrap().to_owned();
            let expected = match r.rsplit('.').next().unwrap() {
                "js" => "text/javascript",
                "css" => "text/css",
                "png" => "image/png",
                "json" => "application/json",
                other => panic!("unexpected asset kind {other}: {r}"),
            };
            assert!(kind.starts_with(expected), "{r}: {kind}");
            if !r.ends_with(".json") {
                assert!(
                    asset.headers()["cache-control"]
                        .to_str()
                        .unwrap()
                        .contains("max-age"),
                    "{r} is not cacheable"
                );
            }
            assert!(!asset.bytes().await.unwrap().is_empty(), "{r} is empty");
        }
    }
    let missing = client
        .get(format!("{}/docs/nothing.js", edge.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // The start script configures no online validator and loads the edge's own document.
    let script = client
        .get(format!("{}/docs/docs.js", edge.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(script.contains("validatorUrl: null") && !script.contains("http"));
    edge.stop().await;
    auth.stop().await;
}
