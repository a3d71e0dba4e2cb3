//! Builds the document: the route modules' `Api` structs merged, then the parts that follow
//! from the edge's own rules written once here rather than on every handler (tags, operation
//! ids, security, the errors every operation can answer).

use actix_web::http::Method;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::Tag;
use utoipa::openapi::{Ref, RefOr, Response, ResponseBuilder};

use super::{BEARER, Detail, ValidationErrors};

/// Security scheme of browser sessions: the access-token cookie.
const SESSION_COOKIE: &str = "session_cookie";
use crate::auth::middleware::is_public;
use crate::error::FieldError;

const DESCRIPTION: &str = "The public REST and WebSocket API of GatheRing.\n\n\
Every path is served both as written here and under the `/api` prefix (`/agents` and \
`/api/agents`). Errors answer `{\"detail\": \"...\"}`; validation failures (422) answer \
`{\"detail\": [{\"loc\": [...], \"msg\": \"...\", \"type\": \"...\"}]}`. Operations with a lock \
need `Authorization: Bearer <access token>` (from `POST /auth/login/json`); WebSocket routes \
(`GET` upgrade requests) take the token as `?token=` instead. Browsers may use the session \
cookie of `POST /auth/session` instead of the header (and of `?token=`).";

/// The shared error bodies, as components.
#[derive(OpenApi)]
#[openapi(components(schemas(Detail, ValidationErrors, FieldError)))]
struct Shared;

/// Errors any operation may answer, added where the handler's annotation does not list them.
const UNAUTHORIZED: &str = "Unauthorized";
const VALIDATION: &str = "ValidationFailed";
const RATE_LIMITED: &str = "RateLimited";
const INTERNAL: &str = "InternalError";

/// The whole document; built once per process by the caller that serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Shared::openapi();
    doc.info.title = "GatheRing API".into();
    doc.info.version = gathering_core::VERSION.into();
    doc.info.description = Some(DESCRIPTION.into());
    doc.info.license = None;
    doc.info.contact = None;
    let mut tags = Vec::new();
    for (name, description, mut api) in crate::routes::openapi_modules() {
        for item in api.paths.paths.values_mut() {
            for op in operations(item) {
                op.tags = Some(vec![name.to_owned()]);
            }
        }
        let mut tag = Tag::new(name);
        tag.description = Some(description.to_owned());
        tags.push(tag);
        doc.merge(api);
    }
    doc.tags = Some(tags);

    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        SESSION_COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::auth::session_cookie::ACCESS_COOKIE,
            "The browser session set by `POST /auth/session` (state-changing requests also need \
             an allowed `Origin`)",
        ))),
    );
    let detail = |text: &str| {
        ResponseBuilder::new()
            .description(text)
            .content(
                "application/json",
                utoipa::openapi::Content::new(Some(Ref::from_schema_name("Detail"))),
            )
            .build()
    };
    let shared: [(&str, Response); 4] = [
        (
            UNAUTHORIZED,
            detail("Missing, malformed or expired access token"),
        ),
        (
            VALIDATION,
            ResponseBuilder::new()
                .description("Invalid path, query or body")
                .content(
                    "application/json",
                    utoipa::openapi::Content::new(Some(Ref::from_schema_name("ValidationErrors"))),
                )
                .build(),
        ),
        (
            RATE_LIMITED,
            detail("Too many requests (see `Retry-After`)"),
        ),
        (INTERNAL, detail("Internal error (the cause is logged)")),
    ];
    for (name, response) in shared {
        components.responses.insert(name.into(), response.into());
    }

    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in methods(item) {
            op.operation_id = Some(operation_id(&method, path));
            let public = is_public(&method, path);
            if !public {
                // Either the bearer token or, for browsers, the session cookie.
                op.security = Some(vec![
                    SecurityRequirement::new(BEARER, Vec::<String>::new()),
                    SecurityRequirement::new(SESSION_COOKIE, Vec::<String>::new()),
                ]);
            }
            let has_input =
                op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let mut add = |status: &str, name: &str| {
                op.responses
                    .responses
                    .entry(status.into())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            };
            if !public {
                add("401", UNAUTHORIZED);
            }
            if has_input {
                add("422", VALIDATION);
            }
            add("429", RATE_LIMITED);
            add("500", INTERNAL);
        }
    }
    doc
}

/// `get /goals/{goal_id}/tree` → `get_goals_goal_id_tree`: unique because paths are.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    let mut last_sep = false;
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            if last_sep || id.len() == method.as_str().len() {
                id.push('_');
            }
            id.push(c);
            last_sep = false;
        } else {
            last_sep = true;
        }
    }
    if path == "/" {
        id.push_str("_root");
    }
    id
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    methods(item).into_iter().map(|(_, op)| op)
}

fn methods(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::HEAD, item.head.as_mut()),
        (Method::OPTIONS, item.options.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_the_path() {
        assert_eq!(
            operation_id(&Method::GET, "/goals/{goal_id}/tree"),
            "get_goals_goal_id_tree"
        );
        assert_eq!(operation_id(&Method::GET, "/"), "get_root");
        assert_eq!(operation_id(&Method::POST, "/agents-db"), "post_agents_db");
    }
}
