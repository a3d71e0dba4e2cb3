//! The SSRF guard: private, loopback, link-local, metadata targets are refused after DNS
//! resolution and at every redirect hop, unless allow-listed. A real receiver listens on
//! 127.0.0.1 to prove a refused request never reaches it.

use gathering_tools::net::{Allowlist, NetGuard};
use serde_json::json;

use crate::helpers::{Receiver, ctx, toolbox};

async fn get(allow: &str, url: &str) -> gathering_tools::SkillResponse {
    toolbox(allow)
        .execute(
            "http_get",
            json!({"url": url, "timeout_seconds": 5}),
            &ctx(None),
        )
        .await
}

#[tokio::test]
async fn private_and_local_targets_are_refused() {
    let rx = Receiver::start().await;
    let port = rx.port();
    for url in [
        format!("http://127.0.0.1:{port}/secret"),
        format!("http://[::1]:{port}/secret"),
        format!("http://localhost:{port}/secret"),
        format!("http://[::ffff:127.0.0.1]:{port}/secret"),
        format!("http://2130706433:{port}/secret"),
        format!("http://0x7f.0.0.1:{port}/secret"),
        format!("http://127.1:{port}/secret"),
        format!("http://0.0.0.0:{port}/secret"),
        "http://10.0.0.1/".to_owned(),
        "http://10.255.1.2:8080/admin".to_owned(),
        "http://172.16.5.4/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://224.0.0.1/".to_owned(),
    ] {
        let r = get("", &url).await;
        assert_eq!(
            r.error.as_deref(),
            Some("refused"),
            "{url} was not refused: {r:?}"
        );
        assert!(r.message.contains("refused"), "{r:?}");
    }
    assert!(
        rx.seen().is_empty(),
        "a refused request reached the receiver: {:?}",
        rx.seen()
    );
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_after_resolution() {
    let guard = NetGuard::strict();
    let err = guard.resolve("localhost", 80).await.unwrap_err();
    assert!(err.to_string().contains("resolves to"), "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");
    let rx = Receiver::start().await;
    let r = get("", &format!("http://localhost:{}/x", rx.port())).await;
    assert!(
        r.message.contains("localhost") && r.message.contains("loopback"),
        "{r:?}"
    );
    assert!(rx.seen().is_empty());
}

#[tokio::test]
async fn redirects_to_private_targets_are_refused_at_the_hop() {
    let rx = Receiver::start().await;
    let port = rx.port();
    // Only the host name "localhost" is allowed, not the addresses themselves: the first hop
    // goes through, the redirect hop to an IP literal must be checked on its own.
    for target in [
        format!("http://127.0.0.1:{port}/secret"),
        format!("http://[::1]:{port}/secret"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://192.168.0.10/".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        for status in [301, 302, 307] {
            let url = format!(
                "http://localhost:{port}/redirect?status={status}&to={}",
                urlencode(&target)
            );
            let r = get("localhost", &url).await;
            assert_eq!(
                r.error.as_deref(),
                Some("refused"),
                "redirect {status} to {target}: {r:?}"
            );
        }
    }
    let seen = rx.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| s.path == "/redirect"),
        "only the first hops arrived: {seen:?}"
    );
}

#[tokio::test]
async fn allow_listed_targets_are_reached_and_redirects_followed() {
    let rx = Receiver::start().await;
    let r = get("127.0.0.1", &rx.url("/json")).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["body"]["hello"], "world");
    let r = get(
        "127.0.0.0/8",
        &rx.url(&format!("/redirect?to={}", urlencode(&rx.url("/json")))),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["redirects"], 1);
    assert!(r.data["url"].as_str().unwrap().ends_with("/json"));
    // An allow-listed host name allows what it resolves to.
    let r = get("localhost", &format!("http://localhost:{}/json", rx.port())).await;
    assert!(r.success, "{r:?}");
    // The allow-list does not open other schemes.
    let r = get("127.0.0.1", "ftp://127.0.0.1/x").await;
    assert_eq!(
        r.error.as_deref(),
        Some("validation_error"),
        "the schema refuses non-http URLs: {r:?}"
    );
    let guard = NetGuard::new(Allowlist::parse("127.0.0.1").unwrap());
    assert!(
        guard
            .check_url(&url::Url::parse("ftp://127.0.0.1/").unwrap())
            .is_err()
    );
}

#[tokio::test]
async fn too_many_redirects_fail() {
    let rx = Receiver::start().await;
    let mut url = rx.url("/json");
    for _ in 0..7 {
        url = rx.url(&format!("/redirect?to={}", urlencode(&url)));
    }
    let r = get("127.0.0.1", &url).await;
    assert_eq!(r.error.as_deref(), Some("execution_failed"), "{r:?}");
    assert!(r.message.contains("redirects"), "{r:?}");
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
