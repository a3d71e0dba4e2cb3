//! Review flows and membership changes without executors: human reviews sending work back,
//! escalation and reassignment, and a leaving member handing its waiting work over.

use gathering_circles::circles;
use gathering_circles::review::{self, Applied, Verdict};
use gathering_circles::{CircleError, metrics, tasks};

use crate::helpers::env;

#[tokio::test]
async fn human_reviews_send_back_then_escalate_and_a_reassignment_starts_over() {
    let e = env().await;
    e.circle("core", true, Some(2)).await;
    let author = e.agent("ann").await;
    let reviewer = e.agent("rev").await;
    e.join("core", author, &["rust"], &[]).await;
    e.join("core", reviewer, &["writing"], &["quality"]).await;
    let t = e.task("core", "parser", &["rust"], &[]).await;
    let id = t["id"].as_i64().unwrap();
    assert_eq!(t["assigned_agent_id"], author);

    let after = tasks::submit(&e.circles, "core", id, "v1", &[])
        .await
        .unwrap();
    assert_eq!(after["status"], "in_review");
    assert_eq!(
        after["reviewer_id"], reviewer,
        "another member who can review"
    );
    assert_eq!(after["reviewer_name"], "rev");
    let reviews: i64 = e
        .scalar("SELECT count(*) FROM queue.jobs WHERE kind = 'circle_task.review' AND payload->>'reviewer_id' = $1::int8::text", &[&reviewer])
        .await;
    assert_eq!(reviews, 1);

    // The author cannot review its own work.
    let own = review::human(
        &e.circles,
        "core",
        id,
        &author.to_string(),
        "u",
        &Verdict {
            approved: true,
            comments: String::new(),
            quality: None,
        },
    )
    .await;
    assert!(matches!(own, Err(CircleError::BadRequest(_))), "{own:?}");

    let no = Verdict {
        approved: false,
        comments: "add tests".into(),
        quality: Some(0.3),
    };
    let r = review::human(&e.circles, "core", id, "a-person", "user-1", &no)
        .await
        .unwrap();
    assert_eq!(r, Applied::SentBack);
    let t = tasks::get(&e.circles, "core", id).await.unwrap();
    assert_eq!(
        (
            t["status"].as_str(),
            t["iteration"].as_i64(),
            t["review_rounds"].as_i64()
        ),
        (Some("assigned"), Some(2), Some(1))
    );
    assert_eq!(t["assigned_agent_id"], author, "back to its author");
    assert_eq!(t["review_comments"], "add tests");
    let work: i64 = e
        .scalar("SELECT count(*) FROM queue.jobs WHERE kind = 'circle_task.work' AND payload->>'iteration' = '2'", &[])
        .await;
    assert_eq!(work, 1, "the new iteration is admitted");
    // Not in review any more.
    assert!(matches!(
        review::human(&e.circles, "core", id, "p", "u", &no).await,
        Err(CircleError::BadRequest(_))
    ));

    tasks::submit(&e.circles, "core", id, "v2", &[])
        .await
        .unwrap();
    // A stale verdict (iteration 1, from a retried job) changes nothing.
    {
        let mut c = e.pool.get().await.unwrap();
        let tx = c.transaction().await.unwrap();
        let (circle, row) = tasks::lock(&tx, id).await.unwrap().unwrap();
        let r = review::apply(
            &tx,
            &circle,
            &row,
            1,
            &review::Reviewer::Agent(reviewer),
            &no,
            2,
        )
        .await
        .unwrap();
        assert_eq!(r.0, Applied::Stale);
        tx.commit().await.unwrap();
    }
    let r = review::human(&e.circles, "core", id, &reviewer.to_string(), "user-1", &no)
        .await
        .unwrap();
    assert_eq!(
        r,
        Applied::Escalated,
        "second rejection of at most 2 rounds"
    );
    let t = tasks::get(&e.circles, "core", id).await.unwrap();
    assert_eq!(
        (t["status"].as_str(), t["status_reason"].as_str()),
        (Some("failed"), Some("escalated"))
    );
    let escalations: i64 = e
        .scalar(
            "SELECT count(*) FROM audit.escalations WHERE task_id = $1 AND status = 'open'",
            &[&id],
        )
        .await;
    assert_eq!(escalations, 1);
    let kinds = e.event_kinds().await;
    assert!(kinds.contains(&"task.escalated".to_string()));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "task.review_rejected")
            .count(),
        2
    );

    // A human reassigns it: a fresh start.
    let t = tasks::assign(&e.circles, "core", id, author).await.unwrap();
    assert_eq!(
        (
            t["status"].as_str(),
            t["iteration"].as_i64(),
            t["review_rounds"].as_i64()
        ),
        (Some("assigned"), Some(3), Some(0))
    );
    tasks::submit(&e.circles, "core", id, "v3", &[])
        .await
        .unwrap();
    let yes = Verdict {
        approved: true,
        comments: "good".into(),
        quality: Some(0.9),
    };
    assert_eq!(
        review::human(&e.circles, "core", id, "p", "user-1", &yes)
            .await
            .unwrap(),
        Applied::Approved
    );
    let t = tasks::get(&e.circles, "core", id).await.unwrap();
    assert_eq!(
        (t["status"].as_str(), t["quality_score"].as_f64()),
        (Some("completed"), Some(0.9))
    );
    let (rate, done): (f64, i32) = {
        let c = e.pool.get().await.unwrap();
        let r = c
            .query_one(
                "SELECT approval_rate, tasks_completed FROM agent.agents WHERE id = $1",
                &[&author],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(done, 1);
    let m = metrics::metrics(&e.circles, "core").await.unwrap();
    let ann = m["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["agent_id"] == author)
        .unwrap();
    assert_eq!(ann["tasks_completed"], 1);
    assert!((ann["approval_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    let rev = m["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["agent_id"] == reviewer)
        .unwrap();
    assert_eq!(rev["reviews_done"], 1, "the one verdict given in its name");
}

#[tokio::test]
async fn a_leaving_member_hands_its_waiting_tasks_and_reviews_over() {
    let e = env().await;
    e.circle("core", true, None).await;
    let a = e.agent("ann").await;
    let b = e.agent("bob").await;
    let c = e.agent("cid").await;
    e.join("core", a, &["rust"], &["quality"]).await;
    let t1 = e.task("core", "one", &["rust"], &[]).await;
    let t2 = e.task("core", "two", &["rust"], &[]).await;
    e.join("core", b, &["rust"], &[]).await;
    tasks::submit(&e.circles, "core", t2["id"].as_i64().unwrap(), "done", &[])
        .await
        .unwrap();
    // Nobody but the author can review: waits for a human or a member who can.
    let t = tasks::get(&e.circles, "core", t2["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert!(t["reviewer_id"].is_null());
    assert_eq!(
        t["status_reason"],
        "awaiting review: no member can review it"
    );
    e.join("core", c, &[], &["all"]).await;
    let t = tasks::get(&e.circles, "core", t2["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(t["reviewer_id"], c, "a reviewer joined");

    circles::remove_member(&e.circles, "core", a).await.unwrap();
    let t = tasks::get(&e.circles, "core", t1["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (t["assigned_agent_id"].as_i64(), t["iteration"].as_i64()),
        (Some(b), Some(2)),
        "rerouted"
    );
    let gone = circles::remove_member(&e.circles, "core", a).await;
    assert!(matches!(gone, Err(CircleError::Missing(_))));
    let detail = circles::detail(&e.pool.get().await.unwrap(), "core")
        .await
        .unwrap();
    assert_eq!(detail["agent_count"], 2);
    assert_eq!(detail["agents"].as_array().unwrap().len(), 2);
}
