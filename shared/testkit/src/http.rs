//! HTTP helpers for tests.

use std::time::{Duration, Instant};

/// A client for tests (rustls with ring installed, short timeouts).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Polls `url` until it answers 2xx, or panics after `timeout`.
pub async fn wait_ok(url: &str, timeout: Duration) {
    let client = client();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await
            && r.status().is_success()
        {
            return;
        }
        if Instant::now() > deadline {
            panic!("{url} did not answer 2xx within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
