//! `GET /v1/models`: the catalogue as OpenAI lists models (`provider/model` ids), with the
//! gateway's details (alias, kind, availability) in an extra `gathering` object. A virtual key
//! sees only the models it may use.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{ApiError, ApiState, authorize};
use crate::registry::ModelKind;

pub async fn handle(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = authorize(&state, &headers)?;
    let data: Vec<Value> = state
        .gateway
        .list_models()
        .into_iter()
        .filter(|m| principal.key().is_none_or(|k| k.allows(&m.id)))
        .map(|m| {
            json!({
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": m.provider,
                "gathering": {
                    "alias": m.alias,
                    "kind": if m.kind == ModelKind::Embedding { "embedding" } else { "chat" },
                    "context_window": m.context_window,
                    "function_calling": m.function_calling,
                    "vision": m.vision,
                    "available": m.available,
                    "mock": m.provider == crate::provider::mock::PROVIDER,
                },
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}
