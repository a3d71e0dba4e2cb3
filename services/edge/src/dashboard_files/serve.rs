//! Answering with a file of the dashboard build: its content type, its cache lifetime (a
//! year and `immutable` for hashed asset names, revalidation for everything else, `index.html`
//! first), an `ETag` for revalidation, and the page's CSP.

use std::time::UNIX_EPOCH;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{Access, Dashboard, Entry};

/// Largest file served (a dashboard bundle's scripts are a few MiB at most).
const MAX_FILE: u64 = 64 * 1024 * 1024;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
/// The build's own scripts, styles and images; API calls and WebSockets to this origin only.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Whether a file's name carries its content hash, so it never changes under that name: all
/// of `assets/` (where Vite puts its hashed output), and names with a hex hash of 8 or more
/// digits as their last `-` or `.` part before the extension (`main.3f2a1b9c.js`,
/// `chunk-0a1b2c3d4e.css`, as webpack and others name them).
pub fn is_hashed(relative: &str) -> bool {
    if relative.starts_with("assets/") {
        return true;
    }
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    let part = stem.rsplit(['-', '.']).next().unwrap_or("");
    part.len() >= 8 && part.len() < stem.len() && part.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The content type of a file, with a charset for text.
pub fn content_type(relative: &str) -> String {
    let mime = mime_guess::from_path(relative).first_or_octet_stream();
    let textual = mime.type_() == "text"
        || matches!(
            mime.essence_str(),
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if textual {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_owned()
    }
}

pub async fn serve(req: HttpRequest, dashboard: web::Data<Dashboard>) -> HttpResponse {
    let Some((entry, access)) = dashboard.target(req.method(), req.path(), req.headers()) else {
        return HttpResponse::NotFound().json(serde_json::json!({"detail": "Not Found"}));
    };
    match file_response(&req, entry, access).await {
        Ok(res) => res,
        Err(e) => {
            tracing::warn!(file = %entry.relative, error = %e, "dashboard file unreadable");
            HttpResponse::NotFound().json(serde_json::json!({"detail": "Not Found"}))
        }
    }
}

async fn file_response(
    req: &HttpRequest,
    entry: &Entry,
    access: Access,
) -> std::io::Result<HttpResponse> {
    let meta = tokio::fs::metadata(&entry.path).await?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err(std::io::Error::other("not a servable file"));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("W/\"{:x}-{:x}\"", meta.len(), modified);
    let cache = if entry.relative != "index.html" && is_hashed(&entry.relative) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let mut res = if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        HttpResponse::NotModified().finish()
    } else {
        let body = tokio::fs::read(&entry.path).await?;
        HttpResponse::Ok()
            .content_type(content_type(&entry.relative))
            .body(body)
    };
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // The same URL is a page for browsers and JSON for API clients (`/`): caches must keep
    // them apart.
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    headers.insert(
        header::HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    if access == Access::Page {
        // Pages follow the session: never kept by shared caches.
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        for h in [
            "assets/index-BZ3x9a1q.js",
            "main.3f2a1b9c.js",
            "static/chunk-0a1b2c3d4e.css",
        ] {
            assert!(is_hashed(h), "{h}");
        }
        for n in [
            "index.html",
            "favicon.ico",
            "app.js",
            "deadbeef.js",
            "robots.txt",
            "main.3f2a.js",
        ] {
            assert!(!is_hashed(n), "{n}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.png"), "image/png");
        assert_eq!(content_type("x.unknownext"), "application/octet-stream");
    }
}
