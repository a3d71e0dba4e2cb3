//! The queue's statements: enqueue, claim, fencing, retries, unique keys, cancel.

use std::time::Duration;

use gathering_queue::{FailOutcome, JobState, NewJob, enqueue_in, wake_in};
use serde_json::json;

use crate::helpers::setup;

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn claims_by_priority_then_due_time_and_completes_once() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let low = q
        .enqueue(NewJob::new("k", json!({"n": 1})).priority(5))
        .await
        .unwrap();
    let high = q
        .enqueue(NewJob::new("k", json!({"n": 2})).priority(1))
        .await
        .unwrap();
    let later = q
        .enqueue(NewJob::new("k", json!({"n": 3})).delay(Duration::from_secs(60)))
        .await
        .unwrap();
    let first = q
        .enqueue(NewJob::new("k", json!({"n": 4})).priority(1))
        .await
        .unwrap();

    let jobs = q.claim("default", "w1", LEASE, 10).await.unwrap();
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(
        ids,
        vec![high.id, first.id, low.id],
        "priority, then run_at; the delayed job waits"
    );
    assert!(jobs.iter().all(|j| j.attempt == 1));
    assert!(!ids.contains(&later.id));

    assert!(q.complete("w1", high.id, 1).await.unwrap());
    assert!(
        !q.complete("w1", high.id, 1).await.unwrap(),
        "a second completion is refused"
    );
    assert!(
        !q.complete("w2", first.id, 1).await.unwrap(),
        "another owner cannot complete"
    );
    let rec = q.get(high.id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Completed);
    assert!(rec.finished_at.is_some());
}

#[tokio::test]
async fn batch_enqueue_is_one_round_trip_and_keeps_order() {
    let ctx = setup().await;
    let jobs: Vec<NewJob> = (0..250)
        .map(|i| NewJob::new("k", json!({ "i": i })))
        .collect();
    let out = ctx.queue.enqueue_many(&jobs).await.unwrap();
    assert_eq!(out.len(), 250);
    assert!(out.iter().all(|e| e.inserted));
    assert!(
        out.windows(2).all(|w| w[0].id < w[1].id),
        "ids follow input order"
    );
    let first = ctx.queue.get(out[0].id).await.unwrap().unwrap();
    assert_eq!(first.payload, json!({"i": 0}));
}

#[tokio::test]
async fn invalid_jobs_are_refused_before_the_database() {
    let ctx = setup().await;
    for job in [
        NewJob::new("k", json!({})).queue("Bad-Name"),
        NewJob::new("", json!({})),
        NewJob::new("k", json!({})).max_attempts(0),
        NewJob::new("k", json!({})).unique_key(""),
    ] {
        assert!(ctx.queue.enqueue(job).await.is_err());
    }
    let n: i64 = ctx
        .db
        .pool(1)
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM queue.jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn unique_key_returns_the_live_job_until_it_is_final() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let a = q
        .enqueue(NewJob::new("k", json!({})).unique_key("sched:1:2026"))
        .await
        .unwrap();
    let b = q
        .enqueue(NewJob::new("k", json!({})).unique_key("sched:1:2026"))
        .await
        .unwrap();
    assert!(a.inserted && !b.inserted);
    assert_eq!(a.id, b.id);
    // Duplicates inside one batch map to the same job too.
    let batch = q
        .enqueue_many(&[
            NewJob::new("k", json!({})).unique_key("x"),
            NewJob::new("k", json!({})).unique_key("x"),
        ])
        .await
        .unwrap();
    assert_eq!(batch[0].id, batch[1].id);
    assert_eq!((batch[0].inserted, batch[1].inserted), (true, false));

    let claimed = q.claim("default", "w", LEASE, 10).await.unwrap();
    let job = claimed.iter().find(|j| j.id == a.id).unwrap();
    let again = q
        .enqueue(NewJob::new("k", json!({})).unique_key("sched:1:2026"))
        .await
        .unwrap();
    assert_eq!(again.id, a.id, "still live while running");
    assert!(q.complete("w", job.id, job.attempt).await.unwrap());
    let fresh = q
        .enqueue(NewJob::new("k", json!({})).unique_key("sched:1:2026"))
        .await
        .unwrap();
    assert!(
        fresh.inserted && fresh.id != a.id,
        "a final job frees its key"
    );
}

#[tokio::test]
async fn failures_back_off_then_discard_keeping_every_error() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let id = q
        .enqueue(NewJob::new("k", json!({})).max_attempts(3))
        .await
        .unwrap()
        .id;
    for attempt in 1..=3 {
        let jobs = q.claim("default", "w", LEASE, 1).await.unwrap();
        assert_eq!(jobs.len(), 1, "attempt {attempt} is claimable");
        assert_eq!(jobs[0].attempt, attempt);
        let outcome = q
            .fail(
                "w",
                id,
                attempt,
                &format!("boom {attempt}"),
                Some(Duration::from_millis(300)),
            )
            .await
            .unwrap();
        let rec = q.get(id).await.unwrap().unwrap();
        if attempt < 3 {
            assert_eq!(outcome, FailOutcome::Retrying);
            assert_eq!(rec.state, JobState::Failed);
            assert!(
                q.claim("default", "w", LEASE, 1).await.unwrap().is_empty(),
                "not before its back-off"
            );
            tokio::time::sleep(Duration::from_millis(350)).await;
        } else {
            assert_eq!(outcome, FailOutcome::Discarded);
            assert_eq!(rec.state, JobState::Discarded);
            assert_eq!(rec.last_error.as_deref(), Some("boom 3"));
            let errors = rec.errors.as_array().unwrap();
            assert_eq!(errors.len(), 3);
            assert_eq!(errors[0]["error"], "boom 1");
            assert_eq!(errors[2]["attempt"], 3);
        }
    }
    assert_eq!(
        q.fail("w", id, 3, "late", None).await.unwrap(),
        FailOutcome::Refused
    );
}

#[tokio::test]
async fn an_expired_lease_is_rescued_and_the_zombie_is_fenced_out() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let id = q.enqueue(NewJob::new("k", json!({}))).await.unwrap().id;
    let first = q
        .claim("default", "zombie", Duration::from_millis(50), 1)
        .await
        .unwrap();
    assert_eq!(first[0].attempt, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(q.rescue_expired(100).await.unwrap(), vec![id]);
    let second = q.claim("default", "healthy", LEASE, 1).await.unwrap();
    assert_eq!(second[0].attempt, 2);
    assert!(
        !q.complete("zombie", id, 1).await.unwrap(),
        "the zombie's completion is refused"
    );
    assert!(
        q.heartbeat("zombie", LEASE, &[id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(q.complete("healthy", id, 2).await.unwrap());
    let rec = q.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Completed);
    assert!(
        rec.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("lease expired")
    );
}

#[tokio::test]
async fn snooze_reschedules_without_counting_an_attempt() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let id = q
        .enqueue(NewJob::new("k", json!({"step": 1})))
        .await
        .unwrap()
        .id;
    let job = q.claim("default", "w", LEASE, 1).await.unwrap().remove(0);
    assert!(
        q.snooze(
            "w",
            id,
            job.attempt,
            Duration::from_millis(200),
            Some(&json!({"step": 2}))
        )
        .await
        .unwrap()
    );
    assert!(q.claim("default", "w", LEASE, 1).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let again = q.claim("default", "w", LEASE, 1).await.unwrap().remove(0);
    assert_eq!(again.attempt, 1, "a snooze is not an attempt");
    assert_eq!(again.payload, json!({"step": 2}));
}

#[tokio::test]
async fn a_wake_ends_a_snooze_even_when_it_comes_while_the_job_runs() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let id = q
        .enqueue(NewJob::new("k", json!({})).unique_key("timer:1"))
        .await
        .unwrap()
        .id;
    let client = q.pool().get().await.unwrap();
    // Snoozed for an hour, woken: due at once.
    let job = q.claim("default", "w", LEASE, 1).await.unwrap().remove(0);
    assert!(
        q.snooze("w", id, job.attempt, Duration::from_secs(3600), None)
            .await
            .unwrap()
    );
    assert!(q.claim("default", "w", LEASE, 1).await.unwrap().is_empty());
    assert!(wake_in(&client, "timer:1").await.unwrap());
    let job = q.claim("default", "w", LEASE, 1).await.unwrap().remove(0);
    // Woken while it runs (before it snoozes): the snooze ends at once, the wake is not lost.
    assert!(wake_in(&client, "timer:1").await.unwrap());
    assert!(
        q.snooze("w", id, job.attempt, Duration::from_secs(3600), None)
            .await
            .unwrap()
    );
    let job = q.claim("default", "w", LEASE, 1).await.unwrap().remove(0);
    // Not woken this time: an ordinary snooze.
    assert!(
        q.snooze("w", id, job.attempt, Duration::from_secs(3600), None)
            .await
            .unwrap()
    );
    assert!(q.claim("default", "w", LEASE, 1).await.unwrap().is_empty());
    assert!(!wake_in(&client, "timer:none").await.unwrap());
}

#[tokio::test]
async fn cancel_stops_live_jobs_only() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let id = q.enqueue(NewJob::new("k", json!({}))).await.unwrap().id;
    assert_eq!(q.cancel(id).await.unwrap(), Some(JobState::Available));
    assert_eq!(q.get(id).await.unwrap().unwrap().state, JobState::Cancelled);
    assert_eq!(
        q.cancel(id).await.unwrap(),
        Some(JobState::Cancelled),
        "already final: unchanged"
    );
    assert_eq!(q.cancel(999_999).await.unwrap(), None);
    assert!(q.claim("default", "w", LEASE, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn enqueue_inside_a_transaction_is_invisible_until_commit() {
    let ctx = setup().await;
    let pool = ctx.db.pool(2);
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let id = enqueue_in(&tx, &NewJob::new("k", json!({})))
        .await
        .unwrap()
        .id;
    assert!(
        ctx.queue
            .claim("default", "w", LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    tx.rollback().await.unwrap();
    assert!(
        ctx.queue.get(id).await.unwrap().is_none(),
        "rolled back with the caller's work"
    );
    let tx = client.transaction().await.unwrap();
    let id = enqueue_in(&tx, &NewJob::new("k", json!({})))
        .await
        .unwrap()
        .id;
    tx.commit().await.unwrap();
    assert_eq!(
        ctx.queue.claim("default", "w", LEASE, 10).await.unwrap()[0].id,
        id
    );
}

#[tokio::test]
async fn purge_deletes_only_final_jobs_past_retention() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let done = q.enqueue(NewJob::new("k", json!({}))).await.unwrap().id;
    let live = q
        .enqueue(NewJob::new("k", json!({})).delay(Duration::from_secs(60)))
        .await
        .unwrap()
        .id;
    let job = q.claim("default", "w", LEASE, 1).await.unwrap().remove(0);
    q.complete("w", job.id, 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let n = q
        .purge_finished(Duration::from_millis(1), Duration::from_secs(3600), 100)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(q.get(done).await.unwrap().is_none());
    assert!(q.get(live).await.unwrap().is_some());
}

#[tokio::test]
async fn complete_and_claim_is_fenced_and_claims_the_next_job_in_order() {
    let ctx = setup().await;
    let q = &ctx.queue;
    let mut ids = Vec::new();
    for p in [3, 1, 2] {
        ids.push(
            q.enqueue(NewJob::new("k", json!({})).priority(p))
                .await
                .unwrap()
                .id,
        );
    }
    let first = q.claim("default", "w1", LEASE, 1).await.unwrap();
    assert_eq!(first[0].id, ids[1], "priority 1 first");

    // Completes the first and claims priority 2 in the same statement.
    let (done, next) = q
        .complete_and_claim("w1", ids[1], 1, "default", LEASE)
        .await
        .unwrap();
    assert!(done);
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[2]]);
    assert_eq!(next[0].attempt, 1);
    assert_eq!(
        q.get(ids[1]).await.unwrap().unwrap().state,
        JobState::Completed
    );
    let rec = q.get(ids[2]).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Running);
    assert_eq!(rec.lease_owner.as_deref(), Some("w1"));

    // A completion whose lease is not ours is refused; the claim still happens.
    let (done, next) = q
        .complete_and_claim("w2", ids[2], 1, "default", LEASE)
        .await
        .unwrap();
    assert!(!done, "fenced: w2 does not hold the job");
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(
        q.get(ids[2]).await.unwrap().unwrap().state,
        JobState::Running
    );
    // A stale attempt is refused too, and an empty queue claims nothing.
    let (done, next) = q
        .complete_and_claim("w1", ids[2], 2, "default", LEASE)
        .await
        .unwrap();
    assert!(!done);
    assert!(next.is_empty());
    let (done, next) = q
        .complete_and_claim("w1", ids[2], 1, "default", LEASE)
        .await
        .unwrap();
    assert!(done);
    assert!(next.is_empty());
}
