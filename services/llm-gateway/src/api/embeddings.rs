//! `POST /v1/embeddings`: string or list of strings in; float arrays, or base64 of
//! little-endian f32 (`encoding_format: "base64"`, the OpenAI Python SDK's default) out.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, authorize, caller, deadline};
use crate::error::GatewayError;
use crate::model::{EmbedCall, request_id};

#[derive(Deserialize)]
struct EmbedBody {
    model: String,
    input: Input,
    encoding_format: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
    /// Anything else (token arrays…): recognised only to say clearly that it is not supported.
    Other(serde::de::IgnoredAny),
}

pub async fn handle(
    State(state): State<ApiState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let id = request_id(super::header(&headers, "x-request-id"));
    let fail = |error: GatewayError| ApiError {
        error,
        request_id: Some(id.clone()),
    };
    let principal = authorize(&state, &headers).map_err(fail)?;
    let body: EmbedBody = serde_json::from_slice(&raw)
        .map_err(|e| fail(GatewayError::InvalidRequest(format!("invalid body: {e}"))))?;
    let inputs = match body.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v,
        Input::Other(_) => {
            return Err(fail(GatewayError::InvalidRequest(
                "input must be a string or a list of strings (token arrays are not supported)"
                    .into(),
            )));
        }
    };
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(fail(GatewayError::InvalidRequest(
                "encoding_format must be 'float' or 'base64'".into(),
            )));
        }
    };
    let call = EmbedCall {
        model: body.model,
        inputs,
        caller: caller(&headers, body.user).map_err(fail)?,
        request_id: id.clone(),
        deadline: deadline(&state, &headers).map_err(fail)?,
        principal,
    };
    let done = state.gateway.embed(call).await.map_err(fail)?;
    let data: Vec<Value> = done
        .output
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = done.output.input_tokens;
    let mut body = json!({
        "object": "list",
        "data": data,
        "model": done.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    if done.mock {
        body["mock"] = Value::Bool(true);
    }
    if let Some(cost) = done.cost_usd {
        body["cost_usd"] = json!(cost);
    }
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    if done.mock {
        response
            .headers_mut()
            .insert("x-gathering-mock", HeaderValue::from_static("true"));
    }
    super::rate_headers(response.headers_mut(), done.rate.as_ref());
    Ok(response)
}
