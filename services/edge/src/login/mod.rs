//! `GET /login`: the edge's own sign-in page, so a dashboard needs no login code. A plain HTML
//! form (no script, no asset from anywhere: it works with JavaScript off and under a strict
//! CSP) posting to `POST /auth/session`, which sets the session cookies and sends the browser
//! back to `next`, a path of this edge (see [`next_path`]). Failures come back here as
//! `?error=<code>`; the message shown is chosen from a fixed list, never reflected text.

pub mod next_path;

use actix_web::http::Method;
use actix_web::http::header::{ACCEPT, HeaderMap};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

const PAGE: &str = include_str!("page.html");
/// Inline styles only; the form posts to this origin; no script at all.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

#[derive(utoipa::OpenApi)]
#[openapi(paths(page))]
pub(crate) struct Api;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// Where to go after signing in: a path of this edge (anything else is replaced by `/`).
    next: Option<String>,
    /// Why the user is back here: `credentials`, `locked`, `origin`, `unavailable`, `expired`.
    error: Option<String>,
}

fn message(code: &str) -> Option<&'static str> {
    match code {
        "credentials" => Some("Incorrect email or password."),
        "locked" => Some("Too many attempts. Please wait a moment and try again."),
        "origin" => Some("This sign-in form was sent from another site and was refused."),
        "unavailable" => Some("Sign-in is unavailable right now. Please try again later."),
        "expired" => Some("Your session has ended. Please sign in again."),
        _ => None,
    }
}

/// Escapes text for an HTML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page, with the error (if any) announced to screen readers and `next` kept.
pub fn render(next: &str, error: Option<&str>) -> String {
    let error = error.and_then(message);
    let (notice, described, invalid) = match error {
        Some(m) => (
            format!(
                r#"<p class="error" id="error" role="alert">{}</p>"#,
                escape(m)
            ),
            r#"aria-describedby="error""#,
            r#"aria-invalid="true""#,
        ),
        None => (String::new(), "", ""),
    };
    PAGE.replace("{{ERROR}}", &notice)
        .replace("{{DESCRIBEDBY}}", described)
        .replace("{{INVALID}}", invalid)
        .replace("{{NEXT}}", &escape(next))
}

/// The sign-in page (HTML, no script): a form posting to `POST /auth/session`.
#[utoipa::path(get, path = "/login", params(LoginQuery), responses(
    (status = 200, description = "The sign-in page", content_type = "text/html", body = String),
))]
pub async fn page(query: web::Query<LoginQuery>) -> HttpResponse {
    let next = next_path::or_root(query.next.as_deref());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("content-security-policy", CSP))
        .insert_header(("cache-control", "no-store"))
        .body(render(next, query.error.as_deref()))
}

/// Routes of the login page (root only: it is a page, not part of the API).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(page));
}

/// A browser loading a page (`GET`/`HEAD` asking for HTML), as opposed to a script's call:
/// such a request without a session is sent to the login page rather than refused.
pub fn is_browser_navigation(method: &Method, headers: &HeaderMap) -> bool {
    (*method == Method::GET || *method == Method::HEAD)
        && headers
            .get_all(ACCEPT)
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/html"))
}

/// Paths anyone may open.
pub fn is_public(path: &str) -> bool {
    path == "/login"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_and_fixed_messages() {
        let html = render("/a?x=\"><script>", Some("credentials"));
        assert!(html.contains(r#"value="/a?x=&quot;&gt;&lt;script&gt;""#));
        assert!(html.contains("Incorrect email or password."));
        assert!(html.contains(r#"role="alert""#));
        let plain = render("/", Some("<b>made up</b>"));
        assert!(!plain.contains("made up") && !plain.contains("role=\"alert\""));
        assert!(!plain.contains("{{"));
    }
}
