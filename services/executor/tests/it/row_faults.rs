//! A run row that breaks what the pipeline job decodes (NULL `trigger_data`, which the code
//! reads as non-null): the job attempt fails with the decoding error, recorded on the job and
//! retried later, the run is left as it was, and the executor keeps running other work. With
//! `Row::get` the handler panicked ("handler panicked: …").

use std::time::{Duration, Instant};

use gathering_pipeline::store::SettingsPatch;
use serde_json::json;

use crate::support::Stack;

/// The job's recorded error, once it has one.
async fn job_error(stack: &Stack, run_id: i64, secs: u64) -> String {
    let client = stack.pool.get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let row = client
            .query_opt(
                "SELECT last_error FROM queue.jobs \
                 WHERE kind = 'pipeline_run.execute' AND (payload->>'run_id')::int8 = $1",
                &[&run_id],
            )
            .await
            .unwrap();
        if let Some(e) = row.and_then(|r| r.get::<_, Option<String>>(0)) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id}'s job recorded no error within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_run_row_that_breaks_decoding_fails_the_job_attempt_not_the_handler() {
    let stack = Stack::new().await;
    let pid = stack
        .pipeline(
            json!([{"id": "t", "type": "trigger", "name": "Start"}]),
            json!([]),
            SettingsPatch::default(),
        )
        .await;
    // Queued before any executor runs, then broken.
    let bad = stack.run(pid, json!({"n": 1})).await;
    let client = stack.pool.get().await.unwrap();
    client
        .batch_execute("ALTER TABLE circle.pipeline_runs ALTER COLUMN trigger_data DROP NOT NULL")
        .await
        .unwrap();
    client
        .execute(
            "UPDATE circle.pipeline_runs SET trigger_data = NULL WHERE id = $1",
            &[&bad],
        )
        .await
        .unwrap();

    let exec = stack.executor(&[]).await;
    let error = job_error(&stack, bad, 20).await;
    assert!(!error.contains("panicked"), "{error}");
    assert!(error.contains("error deserializing column"), "{error}");
    // The claim was rolled back with the failed attempt: the run is still pending.
    let status: String = client
        .query_one(
            "SELECT status FROM circle.pipeline_runs WHERE id = $1",
            &[&bad],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "pending");

    // The same executor runs the next run to the end.
    let good = stack.run(pid, json!({"n": 2})).await;
    let (run, _) = stack.finished(good, 20).await;
    assert_eq!(run.status, "completed", "{:?}", run.error_message);
    exec.stop().await;
}
