//! Security headers on every HTTP response (contract §1), with the documentation pages' looser
//! CSP and no cache headers there. WebSocket upgrades are left alone.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

const COMMON: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("x-xss-protection", "1; mode=block"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains; preload",
    ),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; form-action 'none'";
/// `/docs` serves Swagger UI from the edge itself: its scripts, styles and images come from the
/// edge only (the UI sets inline styles; its icons are data: URLs).
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

fn is_docs(path: &str) -> bool {
    let p = path.strip_prefix("/api").unwrap_or(path);
    p.starts_with("/docs") || p.starts_with("/redoc") || p == "/openapi.json"
}

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let path = req.path().to_owned();
    let mut res = next.call(req).await?;
    let p = path.strip_prefix("/api").unwrap_or(&path);
    if p == "/ws" || p.starts_with("/ws/") && p != "/ws/stats" {
        return Ok(res);
    }
    let headers = res.headers_mut();
    for (k, v) in COMMON {
        headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    if is_docs(&path) {
        headers.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(DOCS_CSP),
        );
    } else {
        // Pages the edge serves to browsers (the login page, a dashboard build) set their own
        // CSP and cache lifetime; everything else gets the strict ones.
        if !headers.contains_key("content-security-policy") {
            headers.insert(
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static(STRICT_CSP),
            );
        }
        if !headers.contains_key("cache-control") {
            headers.insert(
                HeaderName::from_static("cache-control"),
                HeaderValue::from_static("no-store, no-cache, must-revalidate"),
            );
            headers.insert(
                HeaderName::from_static("pragma"),
                HeaderValue::from_static("no-cache"),
            );
        }
    }
    Ok(res)
}
