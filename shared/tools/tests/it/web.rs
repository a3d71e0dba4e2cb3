//! The web and scraper skills: readable text, links, metadata and tables, from a real local
//! page (allow-listed) or from HTML given directly.

use serde_json::json;

use crate::helpers::{PAGE, Receiver, ctx, toolbox};

#[tokio::test]
async fn fetch_url_extracts_the_readable_text() {
    let rx = Receiver::start().await;
    let tb = toolbox("127.0.0.1");
    let r = tb
        .execute("fetch_url", json!({"url": rx.url("/page")}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["title"], "Test Page");
    let text = r.data["content"].as_str().unwrap();
    assert!(
        text.starts_with(
            "Main heading\nFirst paragraph with bold text.\nSecond paragraph.\n- one\n- two"
        ),
        "{text}"
    );
    for absent in ["script text", "Home nav", "Footer text", "color: red"] {
        assert!(!text.contains(absent), "{absent} leaked into {text}");
    }
    let r = tb
        .execute(
            "fetch_url",
            json!({"url": rx.url("/big?n=5000"), "max_length": 100}),
            &ctx(None),
        )
        .await;
    assert_eq!(
        (
            r.data["truncated"].as_bool(),
            r.data["content"].as_str().unwrap().chars().count()
        ),
        (Some(true), 100),
        "{r:?}"
    );
    assert_eq!(r.data["length"], 5000);
    let r = tb
        .execute("fetch_url", json!({"url": rx.url("/page")}), &ctx(None))
        .await;
    assert!(r.success);
    let strict = toolbox("");
    let r = strict
        .execute("fetch_url", json!({"url": rx.url("/page")}), &ctx(None))
        .await;
    assert_eq!(r.error.as_deref(), Some("refused"));
    assert_eq!(rx.seen().len(), 3);
}

#[tokio::test]
async fn links_metadata_and_tables_from_html() {
    let tb = toolbox("");
    let base = "https://site.example/docs/index.html";
    let r = tb
        .execute(
            "extract_links",
            json!({"html": PAGE, "base_url": base}),
            &ctx(None),
        )
        .await;
    assert!(r.success, "{r:?}");
    let urls: Vec<&str> = r.data["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://site.example/home",
            "https://site.example/about",
            "https://external.example/x"
        ]
    );
    assert_eq!(r.data["links"][2]["internal"], false);
    let r = tb
        .execute(
            "extract_links",
            json!({"html": PAGE, "base_url": base, "same_domain_only": true}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.data["total"], 2);

    let r = tb
        .execute(
            "extract_metadata",
            json!({"html": PAGE, "base_url": base}),
            &ctx(None),
        )
        .await;
    let m = &r.data;
    assert_eq!(m["title"], "Test Page");
    assert_eq!(m["description"], "A page for tests");
    assert_eq!(m["keywords"], json!(["a", "b"]));
    assert_eq!(m["canonical"], "https://site.example/canonical");
    assert_eq!(m["favicon"], "https://site.example/favicon.ico");
    assert_eq!(
        (m["language"].as_str(), m["charset"].as_str()),
        (Some("en"), Some("utf-8"))
    );
    assert_eq!(m["open_graph"]["title"], "OG Title");
    assert_eq!(m["twitter"]["card"], "summary");

    let r = tb
        .execute("extract_tables", json!({"html": PAGE}), &ctx(None))
        .await;
    assert_eq!(r.data["total"], 1);
    let t = &r.data["tables"][0];
    assert_eq!(t["caption"], "Scores");
    assert_eq!(t["headers"], json!(["Name", "Score"]));
    assert_eq!(t["rows"], json!([["Ann", "10"], ["Bob", "7"]]));
    let r = tb
        .execute("extract_tables", json!({"base_url": base}), &ctx(None))
        .await;
    assert_eq!(
        r.error.as_deref(),
        Some("validation_error"),
        "url or html is required"
    );
}

#[tokio::test]
async fn extractors_fetch_by_url_through_the_guard() {
    let rx = Receiver::start().await;
    let r = toolbox("127.0.0.1")
        .execute("extract_links", json!({"url": rx.url("/page")}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    assert!(
        r.data["links"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&rx.url("/home"))
    );
    let r = toolbox("")
        .execute(
            "extract_metadata",
            json!({"url": rx.url("/page")}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("refused"));
}
