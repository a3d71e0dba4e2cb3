//! `compose.yaml` is written for users and validated here by parsing (no Docker engine runs in
//! CI): every service is present, built from this repository, health-checked, and the
//! scalable ones declare replicas.

use serde_yaml::Value;

fn compose() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../compose.yaml");
    let mut doc: Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("compose.yaml"))
            .expect("valid YAML");
    doc.apply_merge().expect("merge keys resolve");
    doc
}

#[test]
fn every_service_is_declared_health_checked_and_scalable_where_it_should_be() {
    let doc = compose();
    let services = doc["services"].as_mapping().expect("services");
    for name in [
        "postgres",
        "migrate",
        "auth",
        "edge",
        "executor",
        "scheduler",
        "llm-gateway",
    ] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    assert!(
        doc["services"]["postgres"]["image"]
            .as_str()
            .unwrap()
            .contains("pgvector")
    );
    assert_eq!(
        doc["services"]["migrate"]["build"].as_str(),
        Some("."),
        "one image built from this repository"
    );
    for name in ["auth", "edge", "executor", "scheduler", "llm-gateway"] {
        let s = &doc["services"][name];
        assert_eq!(
            s["image"].as_str(),
            Some("gathering:local"),
            "{name} uses the repository's image"
        );
        let command = s["command"].as_sequence().expect("command");
        assert_eq!(
            command[0].as_str(),
            Some(name),
            "{name} runs `gathering {name}`"
        );
        let check = s["healthcheck"]["test"].as_sequence().expect("healthcheck");
        assert!(
            check.iter().any(|v| v.as_str() == Some("probe")),
            "{name} is health-checked"
        );
        assert!(
            s["environment"]["DATABASE_URL"].as_str().is_some(),
            "{name} gets DATABASE_URL"
        );
    }
    for name in ["edge", "executor"] {
        assert!(
            doc["services"][name]["deploy"]["replicas"]
                .as_str()
                .is_some()
                || doc["services"][name]["deploy"]["replicas"]
                    .as_u64()
                    .is_some(),
            "{name} scales"
        );
    }
}

#[test]
fn only_the_proxy_is_published_and_the_gateway_http_api_stays_internal() {
    let doc = compose();
    let services = doc["services"].as_mapping().expect("services");
    for (name, s) in services {
        let name = name.as_str().unwrap_or_default();
        if name != "proxy" {
            assert!(s.get("ports").is_none(), "{name} publishes a port");
        }
    }
    let gw = &doc["services"]["llm-gateway"]["environment"];
    assert!(
        gw["LLM_GATEWAY_HTTP_ADDR"]
            .as_str()
            .is_some_and(|a| a.contains("127.0.0.1")),
        "the gateway's HTTP API listens on loopback unless keys are configured"
    );
    assert!(
        doc["services"]["auth"]["environment"]["GATHERING_REGISTRATION"]
            .as_str()
            .is_some_and(|v| v.contains("closed"))
    );
}
