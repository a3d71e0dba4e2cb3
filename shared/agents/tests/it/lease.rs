use gathering_agents::{AgentError, lease};
use gathering_testkit::TestDb;

#[tokio::test]
async fn one_holder_at_a_time_and_release_frees_it() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let id: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('a') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let held = lease::acquire(&pool, id).await.unwrap();
    assert!(matches!(
        lease::acquire(&pool, id).await,
        Err(AgentError::AlreadyProcessing)
    ));
    let status: String = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT status FROM agent.agents WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "busy");
    held.release().await;
    let again = lease::acquire(&pool, id).await.unwrap();
    again.release().await;
    assert!(matches!(
        lease::acquire(&pool, 424242).await,
        Err(AgentError::NotFound(424242))
    ));
}

#[tokio::test]
async fn an_abandoned_lease_expires() {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let client = pool.get().await.unwrap();
    let id: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name, processing_by, processing_until) VALUES ('b', 'crashed-edge', now() - interval '1 second') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let taken = lease::acquire(&pool, id)
        .await
        .expect("an expired lease is free");
    taken.release().await;
}
