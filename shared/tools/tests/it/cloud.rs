//! The cloud skill against a real S3-compatible server: moto's server (scripts/setup-test-
//! python.sh) on a free port, with signed requests through the outbound guard.

use std::collections::HashMap;
use std::process::Command;

use base64::Engine;
use gathering_tools::skills::cloud::settings::CloudSettings;
use gathering_tools::{Toolbox, ToolsConfig};
use serde_json::{Value, json};

use crate::helpers::{config, ctx};
use crate::peers::{Peer, free_port, python, wait_port};

struct S3 {
    port: u16,
    _server: Peer,
}

impl S3 {
    async fn start() -> S3 {
        let port = free_port();
        let server = Peer::spawn(
            Command::new(python())
                .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
            "moto server (scripts/setup-test-python.sh)",
        );
        wait_port(port, "moto");
        let s3 = S3 {
            port,
            _server: server,
        };
        for bucket in ["team-bucket", "other-bucket"] {
            s3.raw_put(bucket, "").await;
        }
        s3
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A write that does not go through the skill (a bucket, or an object over its limit).
    async fn raw_put(&self, path: &str, body: impl Into<reqwest::Body>) {
        gathering_core::tls::install_crypto_provider();
        let r = reqwest::Client::new()
            .put(format!("{}/{path}", self.endpoint()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT {path}: {}", r.status());
    }

    fn vars(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = [
            ("GATHERING_CLOUD_S3_ENDPOINT", self.endpoint().as_str()),
            ("GATHERING_CLOUD_S3_BUCKETS", "team-bucket"),
            ("GATHERING_CLOUD_S3_ACCESS_KEY_ID", "testing-key"),
            ("GATHERING_CLOUD_S3_SECRET_ACCESS_KEY", "testing-secret"),
            ("GATHERING_CLOUD_MAX_OBJECT_BYTES", "65536"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        vars
    }

    fn toolbox(&self, extra: &[(&str, &str)]) -> Toolbox {
        let cloud =
            CloudSettings::from_vars(&self.vars(extra), &config("").http_allowlist).unwrap();
        Toolbox::new(
            None,
            ToolsConfig {
                cloud,
                ..config("")
            },
        )
        .unwrap()
    }
}

async fn run(tb: &Toolbox, tool: &str, input: Value) -> gathering_tools::SkillResponse {
    tb.execute(tool, input, &ctx(None)).await
}

fn keys(r: &gathering_tools::SkillResponse) -> Vec<String> {
    r.data["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:?}"))
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn objects_are_written_listed_read_and_deleted_on_a_local_s3_server() {
    let s3 = S3::start().await;
    let tb = s3.toolbox(&[("GATHERING_CLOUD_S3_ALLOW_PRIVATE", "true")]);
    let b = "team-bucket";

    let r = run(&tb, "cloud_put", json!({"bucket": b, "key": "notes/plan.md", "text": "# Plan\nship it\n", "content_type": "text/markdown"})).await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["size"], 15);
    let binary: Vec<u8> = (0..=255u8).rev().cycle().take(1000).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&binary);
    let r = run(
        &tb,
        "cloud_put",
        json!({"bucket": b, "key": "data/blob.bin", "content_base64": b64}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = run(
        &tb,
        "cloud_put",
        json!({"bucket": b, "key": "notes/été 2027.txt", "text": "accents"}),
    )
    .await;
    assert!(r.success, "{r:?}");

    let r = run(&tb, "cloud_list", json!({"bucket": b})).await;
    assert_eq!(
        keys(&r),
        ["data/blob.bin", "notes/plan.md", "notes/été 2027.txt"]
    );
    assert_eq!(r.data["objects"][0]["size"], 1000);
    assert_eq!(r.data["truncated"], false);
    let r = run(&tb, "cloud_list", json!({"bucket": b, "prefix": "notes/"})).await;
    assert_eq!(keys(&r), ["notes/plan.md", "notes/été 2027.txt"]);
    // Pages.
    let r = run(&tb, "cloud_list", json!({"bucket": b, "limit": 2})).await;
    assert_eq!(
        (keys(&r).len(), r.data["truncated"].as_bool()),
        (2, Some(true)),
        "{r:?}"
    );
    let token = r.data["next_continuation_token"].as_str().unwrap();
    let r = run(
        &tb,
        "cloud_list",
        json!({"bucket": b, "limit": 2, "continuation_token": token}),
    )
    .await;
    assert_eq!(keys(&r), ["notes/été 2027.txt"]);

    let r = run(
        &tb,
        "cloud_get",
        json!({"bucket": b, "key": "notes/plan.md"}),
    )
    .await;
    assert_eq!(
        (r.data["text"].as_str(), r.data["content_type"].as_str()),
        (Some("# Plan\nship it\n"), Some("text/markdown")),
        "{r:?}"
    );
    let r = run(
        &tb,
        "cloud_get",
        json!({"bucket": b, "key": "data/blob.bin"}),
    )
    .await;
    assert_eq!(
        r.data["content_base64"].as_str(),
        Some(b64.as_str()),
        "{r:?}"
    );
    let r = run(
        &tb,
        "cloud_get",
        json!({"bucket": b, "key": "notes/été 2027.txt"}),
    )
    .await;
    assert_eq!(r.data["text"], "accents", "{r:?}");
    let r = run(
        &tb,
        "cloud_get",
        json!({"bucket": b, "key": "nothing/here"}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("not_found"), "{r:?}");
    assert!(r.message.contains("NoSuchKey"), "{r:?}");

    // Delete asks first.
    let unconfirmed = gathering_tools::CallContext::new(gathering_tools::Grants::all());
    let r = tb
        .execute(
            "cloud_delete",
            json!({"bucket": b, "key": "notes/plan.md"}),
            &unconfirmed,
        )
        .await;
    assert!(r.needs_confirmation && !r.success, "{r:?}");
    let r = run(
        &tb,
        "cloud_list",
        json!({"bucket": b, "prefix": "notes/plan"}),
    )
    .await;
    assert_eq!(keys(&r), ["notes/plan.md"]);
    let r = run(
        &tb,
        "cloud_delete",
        json!({"bucket": b, "key": "notes/plan.md"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = run(&tb, "cloud_list", json!({"bucket": b})).await;
    assert_eq!(keys(&r), ["data/blob.bin", "notes/été 2027.txt"]);
}

#[tokio::test]
async fn oversize_objects_other_buckets_and_private_endpoints_are_refused() {
    let s3 = S3::start().await;
    let tb = s3.toolbox(&[("GATHERING_CLOUD_S3_ALLOW_PRIVATE", "true")]);
    let big = "x".repeat(65_537);

    let r = run(
        &tb,
        "cloud_put",
        json!({"bucket": "team-bucket", "key": "big.txt", "text": big}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("too_large"), "{r:?}");
    // An object over the limit written by someone else is not read.
    s3.raw_put("team-bucket/big.txt", big.clone()).await;
    let r = run(
        &tb,
        "cloud_get",
        json!({"bucket": "team-bucket", "key": "big.txt"}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("too_large"), "{r:?}");

    // A bucket the operator did not list, though it exists on the server.
    s3.raw_put("other-bucket/secret.txt", "not yours").await;
    for (tool, input) in [
        ("cloud_list", json!({"bucket": "other-bucket"})),
        (
            "cloud_get",
            json!({"bucket": "other-bucket", "key": "secret.txt"}),
        ),
        (
            "cloud_put",
            json!({"bucket": "other-bucket", "key": "x", "text": "x"}),
        ),
        (
            "cloud_delete",
            json!({"bucket": "other-bucket", "key": "secret.txt"}),
        ),
    ] {
        let r = run(&tb, tool, input).await;
        assert_eq!(r.error.as_deref(), Some("refused"), "{tool}: {r:?}");
        assert!(r.message.contains("other-bucket"), "{r:?}");
    }

    // Keys that would climb out of the bucket (path-style URLs resolve dot segments).
    for key in [
        "../other-bucket/secret.txt",
        "%2e%2e/other-bucket/secret.txt",
        "a/./b",
    ] {
        for (tool, input) in [
            ("cloud_get", json!({"bucket": "team-bucket", "key": key})),
            (
                "cloud_put",
                json!({"bucket": "team-bucket", "key": key, "text": "x"}),
            ),
            ("cloud_delete", json!({"bucket": "team-bucket", "key": key})),
        ] {
            let r = run(&tb, tool, input).await;
            assert_eq!(r.error.as_deref(), Some("refused"), "{tool} {key}: {r:?}");
        }
    }

    // Without the operator's ALLOW_PRIVATE, a loopback endpoint is the outbound guard's to refuse.
    let guarded = s3.toolbox(&[]);
    let r = run(&guarded, "cloud_list", json!({"bucket": "team-bucket"})).await;
    assert_eq!(r.error.as_deref(), Some("refused"), "{r:?}");

    // Nothing configured: the tools say what the operator sets.
    let none = Toolbox::new(None, config("")).unwrap();
    let r = run(&none, "cloud_list", json!({"bucket": "team-bucket"})).await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    assert!(r.message.contains("GATHERING_CLOUD_S3_ENDPOINT"), "{r:?}");
    // Schema: exactly one of text / content_base64.
    let r = run(
        &tb,
        "cloud_put",
        json!({"bucket": "team-bucket", "key": "k"}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("validation_error"), "{r:?}");
}

#[test]
fn the_settings_are_checked_at_start_up() {
    let allow = config("").http_allowlist;
    let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert!(
        CloudSettings::from_vars(&vars(&[]), &allow)
            .unwrap()
            .is_none()
    );
    let e = CloudSettings::from_vars(
        &vars(&[(
            "GATHERING_CLOUD_S3_ENDPOINT",
            "https://s3.eu-west-1.amazonaws.com",
        )]),
        &allow,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("GATHERING_CLOUD_S3_BUCKETS"), "{e}");
    let e = CloudSettings::from_vars(
        &vars(&[
            ("GATHERING_CLOUD_S3_ENDPOINT", "ftp://x"),
            ("GATHERING_CLOUD_S3_BUCKETS", "b"),
        ]),
        &allow,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("GATHERING_CLOUD_S3_ENDPOINT"), "{e}");
    let s = CloudSettings::from_vars(
        &vars(&[
            (
                "GATHERING_CLOUD_S3_ENDPOINT",
                "https://s3.eu-west-1.amazonaws.com",
            ),
            ("GATHERING_CLOUD_S3_BUCKETS", "a, b"),
            ("GATHERING_CLOUD_S3_SECRET_ACCESS_KEY", "very-secret"),
        ]),
        &allow,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (s.buckets.len(), s.path_style, s.region.as_str()),
        (2, false, "us-east-1")
    );
    assert!(!format!("{s:?}").contains("very-secret"));
}
