//! The database skill on a real PostgreSQL database (a throwaway one from the test cluster).

use gathering_testkit::TestDb;
use gathering_tools::Toolbox;
use serde_json::{Value, json};

use crate::helpers::{config, ctx};

async fn setup() -> (TestDb, Toolbox) {
    let db = TestDb::empty().await;
    let client = db.pool(1).get().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), \
                                 tags text[], meta jsonb, seen timestamptz DEFAULT now(), ok boolean);
             CREATE INDEX items_name_idx ON items (name);
             INSERT INTO items (id, name, price, tags, meta, ok)
             SELECT n, 'item ' || n, n * 1.25, ARRAY['a', 'b'], jsonb_build_object('n', n), n % 2 = 0
             FROM generate_series(1, 50) n;
             CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10;",
        )
        .await
        .unwrap();
    let cfg = gathering_tools::ToolsConfig {
        database_url: Some(gathering_core::Secret::new(db.url.clone())),
        ..config("")
    };
    (db, Toolbox::new(None, cfg).unwrap())
}

async fn call(tb: &Toolbox, tool: &str, input: Value) -> gathering_tools::SkillResponse {
    tb.execute(tool, input, &ctx(None)).await
}

#[tokio::test]
async fn queries_are_read_only_bounded_and_typed() {
    let (db, tb) = setup().await;
    let r = call(&tb, "db_query", json!({"sql": "SELECT id, name, price, tags, meta, ok, NULL::int AS nothing, 1.5::float8 AS f FROM items WHERE id <= 2 ORDER BY id;"})).await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        r.data["rows"][1],
        json!({"id": 2, "name": "item 2", "price": "2.50", "tags": ["a", "b"], "meta": {"n": 2}, "ok": true, "nothing": null, "f": 1.5})
    );
    assert_eq!(
        r.data["columns"][2],
        json!({"name": "price", "type": "numeric"})
    );

    // The row limit.
    let r = call(
        &tb,
        "db_query",
        json!({"sql": "SELECT * FROM items ORDER BY id", "limit": 10}),
    )
    .await;
    assert_eq!(
        (r.data["row_count"].as_u64(), r.data["truncated"].as_bool()),
        (Some(10), Some(true))
    );
    let r = call(
        &tb,
        "db_query",
        json!({"sql": "SELECT count(*) FROM cheap"}),
    )
    .await;
    assert_eq!(r.data["rows"][0]["count"], 7, "{r:?}");

    // Writes fail in the read-only transaction, and so do several statements at once.
    for sql in [
        "DELETE FROM items",
        "INSERT INTO items (id, name) VALUES (999, 'x')",
        "CREATE TABLE evil (x int)",
        "COMMIT; DELETE FROM items",
        "SET TRANSACTION READ WRITE",
    ] {
        let r = call(&tb, "db_query", json!({"sql": sql})).await;
        assert!(!r.success, "{sql}: {r:?}");
        assert_eq!(r.error.as_deref(), Some("execution_failed"), "{sql}: {r:?}");
    }
    let r = call(
        &tb,
        "db_query",
        json!({"sql": "WITH d AS (DELETE FROM items RETURNING id) SELECT count(*) FROM d"}),
    )
    .await;
    assert!(r.message.contains("read-only"), "{r:?}");
    let count: i64 = db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 50, "nothing was written");

    // The statement timeout.
    let r = call(
        &tb,
        "db_query",
        json!({"sql": "SELECT pg_sleep(5)", "timeout_ms": 300}),
    )
    .await;
    assert!(r.message.contains("statement timeout"), "{r:?}");
    let r = call(&tb, "db_query", json!({"sql": "SELEC nonsense"})).await;
    assert!(r.message.starts_with("SQL error: 42601"), "{r:?}");
}

#[tokio::test]
async fn schema_inspection() {
    let (_db, tb) = setup().await;
    let r = call(&tb, "db_schema", json!({})).await;
    assert!(r.success, "{r:?}");
    let names: Vec<(&str, &str)> = r.data["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("cheap", "view"), ("items", "table")]);

    let r = call(&tb, "db_describe", json!({"table": "items"})).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["primary_key"], json!(["id"]));
    assert_eq!(
        r.data["columns"][2],
        json!({"name": "price", "type": "numeric(10,2)", "nullable": true, "default": null})
    );
    assert_eq!(r.data["columns"][1]["nullable"], false);
    assert_eq!(r.data["indexes"].as_array().unwrap().len(), 2);
    let r = call(&tb, "db_describe", json!({"table": "missing"})).await;
    assert_eq!(r.error.as_deref(), Some("not_found"), "{r:?}");
}

#[tokio::test]
async fn without_a_configured_database_the_tools_say_so() {
    let tb = crate::helpers::toolbox("");
    let r = call(&tb, "db_query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    assert!(r.message.contains("GATHERING_SKILL_DATABASE_URL"), "{r:?}");
}
