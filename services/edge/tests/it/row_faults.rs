//! Rows that break what the code expects (a NULL in a column it decodes as non-null, a column
//! whose type changed under it): the request gets the contract's 500, the cause is logged, and
//! the same edge (one worker) keeps serving. With `Row::get` the worker thread panicked and the
//! client saw its connection dropped.

use gathering_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, Reply, start_auth, start_edge};

async fn pipeline(api: &Api, name: &str) -> i64 {
    let r = api
        .post(
            "/pipelines",
            None,
            &json!({
                "name": name, "status": "active",
                "nodes": [{"id": "t", "type": "trigger", "name": "Start"}],
                "edges": [],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn internal_error(r: &Reply) {
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert_eq!(r.body, json!({"detail": "Internal server error"}));
}

#[tokio::test]
async fn a_row_that_breaks_decoding_is_a_500_and_the_edge_keeps_serving() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[("DISABLE_AUTH", "true")]).await;
    let api = edge.api();
    let bad = pipeline(&api, "bad").await;
    let good = pipeline(&api, "good").await;

    // A NULL where the code decodes a non-null `name`.
    let client = db.pool(1).get().await.unwrap();
    client
        .batch_execute("ALTER TABLE circle.pipelines ALTER COLUMN name DROP NOT NULL")
        .await
        .unwrap();
    client
        .execute(
            "UPDATE circle.pipelines SET name = NULL WHERE id = $1",
            &[&bad],
        )
        .await
        .unwrap();
    internal_error(&api.get(&format!("/pipelines/{bad}"), None).await);
    internal_error(&api.get("/api/pipelines", None).await);
    // The same worker answers the next requests.
    let r = api.get(&format!("/pipelines/{good}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "good");
    assert_eq!(api.get("/health", None).await.status, StatusCode::OK);

    // A column whose type is no longer the one the code decodes (integer → bigint).
    client
        .batch_execute("ALTER TABLE circle.pipelines ALTER COLUMN run_count TYPE bigint")
        .await
        .unwrap();
    internal_error(&api.get(&format!("/pipelines/{good}"), None).await);
    let r = api.get("/health", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Other resources are unaffected.
    let r = api.get("/scheduled-actions", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(matches!(r.body, Value::Array(_)), "{}", r.body);

    edge.stop().await;
    auth.stop().await;
}
