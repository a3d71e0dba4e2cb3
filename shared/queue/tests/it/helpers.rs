use std::time::{Duration, Instant};

use gathering_queue::{JobId, JobRecord, JobState, Queue, QueueConfig, WorkerConfig};
use gathering_testkit::TestDb;

pub struct Ctx {
    pub db: TestDb,
    pub queue: Queue,
}

pub async fn setup() -> Ctx {
    let db = TestDb::new().await;
    let queue = Queue::new(db.pool(16));
    Ctx { db, queue }
}

pub fn config(queue: &str, concurrency: usize, batch: usize) -> WorkerConfig {
    WorkerConfig {
        queues: vec![QueueConfig {
            name: queue.into(),
            concurrency,
            batch,
        }],
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(5),
        rescue_interval: Duration::from_millis(200),
        ..WorkerConfig::default()
    }
}

pub async fn wait_state(queue: &Queue, id: JobId, state: JobState, timeout: Duration) -> JobRecord {
    let deadline = Instant::now() + timeout;
    loop {
        let job = queue.get(id).await.unwrap().expect("job exists");
        if job.state == state {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {:?}, expected {state:?}",
            job.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
