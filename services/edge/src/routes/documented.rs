//! The OpenAPI fragments of the route modules annotated for issue 17 (second half): every
//! route a module's `configure` registers is in its document with the same method, and nothing
//! else is; every `{param}` of a path is declared; every `$ref` resolves. The route table is
//! read from the modules' source, so a route added without `#[utoipa::path]` fails here.

use std::collections::BTreeSet;

use serde_json::Value;
use utoipa::OpenApi;

type Ops = BTreeSet<(String, String)>;

/// (method, path) of every route registered in `src`: a route given a literal path and a
/// method route, or a method route added to a `web::resource` given a literal path.
fn registered(src: &str) -> Ops {
    let s: String = src.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Ops::new();
    let mut rest = s.as_str();
    let mut resource: Option<String> = None;
    let tokens = [".route(\"", "web::resource(\"", ".route(web::"];
    while let Some((i, k)) = tokens
        .iter()
        .enumerate()
        .filter_map(|(k, t)| rest.find(t).map(|i| (i, k)))
        .min()
    {
        rest = &rest[i + tokens[k].len()..];
        match k {
            0 => {
                let (path, after) = rest.split_once('"').expect("route path");
                let method = after
                    .strip_prefix(",web::")
                    .and_then(|a| a.split_once('('))
                    .map(|(m, _)| m)
                    .expect("route method");
                out.insert((method.to_owned(), path.to_owned()));
                resource = None;
            }
            1 => {
                let (path, _) = rest.split_once('"').expect("resource path");
                resource = Some(path.to_owned());
            }
            _ => {
                let (method, _) = rest.split_once('(').expect("resource method");
                let path = resource.clone().expect("a method route outside a resource");
                out.insert((method.to_owned(), path));
            }
        }
    }
    out
}

fn documented(doc: &Value) -> Ops {
    let mut out = Ops::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                out.insert((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r);
            }
            o.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Each module: its document and the source files holding its `configure`.
fn modules() -> Vec<(&'static str, utoipa::openapi::OpenApi, Vec<&'static str>)> {
    vec![
        (
            "pipelines",
            super::pipelines::Api::openapi(),
            vec![include_str!("pipelines.rs")],
        ),
        (
            "pipeline_approvals",
            super::pipeline_approvals::Api::openapi(),
            vec![include_str!("pipeline_approvals.rs")],
        ),
        (
            "plugins",
            super::plugins::Api::openapi(),
            vec![include_str!("plugins.rs")],
        ),
        (
            "projects",
            super::projects::Api::openapi(),
            vec![include_str!("projects.rs")],
        ),
        (
            "scheduled_actions",
            super::scheduled_actions::Api::openapi(),
            vec![include_str!("scheduled_actions/mod.rs")],
        ),
        (
            "settings",
            super::settings::Api::openapi(),
            vec![include_str!("settings/mod.rs")],
        ),
        (
            "tools",
            super::tools::Api::openapi(),
            vec![include_str!("tools.rs")],
        ),
        (
            "usage",
            super::usage::Api::openapi(),
            vec![include_str!("usage.rs")],
        ),
        (
            "workspace",
            super::workspace::Api::openapi(),
            vec![include_str!("workspace.rs")],
        ),
        (
            "lsp",
            super::lsp::Api::openapi(),
            vec![include_str!("lsp.rs")],
        ),
    ]
}

#[test]
fn every_registered_route_is_documented_and_nothing_else() {
    let mut total = 0;
    for (name, doc, sources) in modules() {
        let doc = serde_json::to_value(&doc).expect("document as JSON");
        let routes: Ops = sources.iter().flat_map(|s| registered(s)).collect();
        assert!(!routes.is_empty(), "{name}: no route found in its source");
        let ops = documented(&doc);
        let missing: Vec<_> = routes.difference(&ops).collect();
        let extra: Vec<_> = ops.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "{name}: routes not documented: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "{name}: documented but not registered: {extra:?}"
        );
        total += ops.len();
    }
    // 14 pipelines + 3 approvals + 14 plugins + 11 projects + 9 scheduled actions
    // + 11 settings + 11 tools + 2 usage + 21 workspace + 7 lsp.
    assert_eq!(total, 103);
}

#[test]
fn operations_declare_their_path_params_and_responses() {
    for (name, doc, _) in modules() {
        let doc = serde_json::to_value(&doc).expect("document as JSON");
        for (method, path) in documented(&doc) {
            let op = &doc["paths"][&path][&method];
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let in_path: BTreeSet<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(p, _)| p))
                .collect();
            assert_eq!(declared, in_path, "{name}: {method} {path} path params");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{name}: {method} {path} has no success response"
            );
            for (status, r) in responses {
                assert!(
                    r["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{name}: {method} {path} {status} has no description"
                );
            }
        }
    }
}

#[test]
fn every_schema_reference_resolves() {
    for (name, doc, _) in modules() {
        let doc = serde_json::to_value(&doc).expect("document as JSON");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in found {
            let schema = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{name}: unexpected reference {r}"));
            assert!(
                doc["components"]["schemas"].get(schema).is_some(),
                "{name}: {r} is not in the document's components"
            );
        }
    }
}

#[test]
fn bodies_and_errors_are_described_by_their_types() {
    let doc = serde_json::to_value(super::tools::Api::openapi()).expect("document as JSON");
    let execute = &doc["paths"]["/tools/execute"]["post"];
    assert_eq!(
        execute["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ExecuteBody"
    );
    let body = &doc["components"]["schemas"]["ExecuteBody"];
    assert_eq!(body["required"], serde_json::json!(["tool"]));
    assert_eq!(
        execute["responses"]["404"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Detail"
    );
    let list = &doc["paths"]["/tools"]["get"]["parameters"];
    let names: Vec<&str> = list
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["category", "skill"]);

    let doc = serde_json::to_value(super::workspace::Api::openapi()).expect("document as JSON");
    let file = &doc["paths"]["/workspace/{project_id}/file"];
    assert!(file["get"].is_object() && file["put"].is_object() && file["delete"].is_object());
    assert!(file["put"]["requestBody"].is_object());
    assert!(doc["paths"]["/workspace/{project_id}/file/raw"]["get"]["responses"]["200"]["content"]["*/*"].is_object());
}
