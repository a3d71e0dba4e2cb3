//! The gateway's virtual keys and team budgets through the edge are an administrator's only:
//! an ordinary user can neither make, list, rotate nor revoke keys, nor set a team budget (the
//! answer is 403 before the gateway is asked; no gateway runs here, so any call through would
//! fail differently).

use gathering_testkit::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{start_auth, start_edge};

#[tokio::test]
async fn only_admins_manage_gateway_keys() {
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    // A gateway address where nothing listens: a request that got through would answer 5xx.
    let edge = start_edge(&db, &auth, &[("LLM_GATEWAY_URL", "http://127.0.0.1:9")]).await;
    let api = edge.api();
    let (token, _) = api.user("mallory@example.com", "long enough pw").await;
    let attempts = [
        (
            Method::POST,
            "/settings/gateway-keys",
            Some(json!({"name": "mine", "budget": {"amount": 1000, "period": "daily"}})),
        ),
        (Method::GET, "/settings/gateway-keys", None),
        (Method::POST, "/settings/gateway-keys/1/rotate", None),
        (Method::DELETE, "/settings/gateway-keys/1", None),
        (Method::GET, "/settings/gateway-teams", None),
        (
            Method::PUT,
            "/settings/gateway-teams/red",
            Some(json!({"budget": {"amount": 1000, "period": "monthly"}})),
        ),
    ];
    for (method, path, body) in attempts {
        let mut req = api
            .client
            .request(method.clone(), format!("{}{path}", api.base))
            .bearer_auth(&token);
        if let Some(b) = body.clone() {
            req = req.json(&b);
        }
        let r = api.send(req).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
        assert_eq!(r.body["detail"], "Admin access required");
        // Without a token at all: 401.
        let mut req = api
            .client
            .request(method.clone(), format!("{}{path}", api.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = api.send(req).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {:?}",
            r.body
        );
    }
    edge.stop().await;
    auth.stop().await;
}
