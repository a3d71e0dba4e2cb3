//! `/docs`: Swagger UI on the edge's own document, every asset served from the binary (vendored
//! in `services/edge/assets/swagger-ui`, Apache-2.0), so the page works with no internet access
//! and the docs CSP can allow scripts and styles from the edge only.

use actix_web::{HttpRequest, HttpResponse, web};

const PAGE: &str = include_str!("../../assets/docs/index.html");

/// (name, content type, bytes). Asset names are fixed: nothing from the request reaches a path.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "favicon-32x32.png",
        "image/png",
        include_bytes!("../../assets/swagger-ui/favicon-32x32.png"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/docs/docs.js"),
    ),
    (
        "docs.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/docs/docs.css"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/LICENSE"),
    ),
];

/// Assets change only with the edge's version; a day of caching, then revalidation.
const ASSET_CACHE: &str = "public, max-age=86400";

/// The page links its assets and the document under the prefix it was asked with (`/docs` or
/// `/api/docs`), so it also works behind a proxy that forwards only `/api`.
pub async fn index(req: HttpRequest) -> HttpResponse {
    let prefix = if req.path().starts_with("/api/") {
        "/api"
    } else {
        ""
    };
    let page = PAGE
        .replace("{{BASE}}", &format!("{prefix}/docs"))
        .replace("{{SPEC}}", &format!("{prefix}/openapi.json"));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .body(page)
}

pub async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("cache-control", ASSET_CACHE))
            .body(*bytes),
        None => HttpResponse::NotFound().json(serde_json::json!({"detail": "Not Found"})),
    }
}
