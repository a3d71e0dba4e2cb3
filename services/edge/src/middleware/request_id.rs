//! `X-Request-ID`: echoed when the client sends a sane one, generated otherwise; carried by
//! the request's tracing span and logged with the outcome of every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const HEADER: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "req_{}_{:06x}",
                chrono::Utc::now().timestamp_millis(),
                rand::random::<u32>() & 0xff_ffff
            )
        });
    req.extensions_mut().insert(RequestId(id.clone()));
    let (method, path) = (req.method().to_string(), req.path().to_owned());
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    span.in_scope(|| {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::error!(status, ms, "request failed");
        } else {
            tracing::info!(status, ms, "request");
        }
    });
    metrics::counter!("edge_requests_total", "status" => status.to_string()).increment(1);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, v);
    }
    Ok(res)
}
