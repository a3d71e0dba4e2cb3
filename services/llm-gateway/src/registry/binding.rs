//! Where each provider's calls go and with which key: the base URL by precedence and the key
//! binding rule of the module above (a key goes only to the URL it was configured for).

use gathering_core::Secret;

use super::{Registry, key_context};
use crate::config::ProviderEnv;
use crate::provider::Wire;

pub(super) struct ResolvedProvider {
    pub(super) base_url: String,
    pub(super) key: Option<Secret>,
    pub(super) key_source: Option<&'static str>,
    pub(super) key_note: Option<String>,
    pub(super) is_local: bool,
    pub(super) guarded: bool,
    pub(super) refused: Option<String>,
}

pub(super) struct CatalogueProvider {
    pub(super) base_url: Option<String>,
    pub(super) api_type: String,
    pub(super) is_local: bool,
}

pub(crate) struct Stored {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) base_url: Option<String>,
    /// The only base URL the stored key may go to.
    pub(crate) key_base_url: Option<String>,
    pub(crate) default_model: Option<String>,
}

/// Where a provider's effective base URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlOrigin {
    Stored,
    Environment,
    Catalogue,
    Builtin,
}

/// The effective base URL (normalised) and its origin, by precedence: stored through
/// `/settings`, the environment, the catalogue, the built-in public URL.
pub(crate) fn pick_base_url(
    stored: Option<&str>,
    env: Option<&str>,
    catalogue: Option<&str>,
    builtin: Option<&str>,
) -> (String, UrlOrigin) {
    let (raw, origin) = match (stored, env, catalogue) {
        (Some(u), _, _) => (u, UrlOrigin::Stored),
        (None, Some(u), _) => (u, UrlOrigin::Environment),
        (None, None, Some(u)) => (u, UrlOrigin::Catalogue),
        (None, None, None) => (builtin.unwrap_or_default(), UrlOrigin::Builtin),
    };
    (normalise_url(raw), origin)
}

/// `url` without trailing slashes, for comparing bound URLs.
pub(crate) fn normalise_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}
impl Registry {
    /// One provider's base URL (and where it came from), the key it may use (bound to that
    /// URL, see the module doc), and whether calls go through the outbound guard.
    pub(super) fn resolve_provider(
        &self,
        name: &str,
        env: &ProviderEnv,
        cat: Option<&CatalogueProvider>,
        builtin: Option<(Wire, &'static str, bool)>,
        st: Option<&Stored>,
    ) -> ResolvedProvider {
        let (base_url, origin) = pick_base_url(
            st.and_then(|s| s.base_url.as_deref()),
            env.base_url.as_deref(),
            cat.and_then(|c| c.base_url.as_deref()),
            builtin.map(|b| b.1),
        );
        let is_local = cat
            .map(|c| c.is_local)
            .or(builtin.map(|b| b.2))
            .unwrap_or(false);
        let builtin_url = builtin.map(|b| normalise_url(b.1));
        // Where the operator's environment key may go: its own base URL, else the public host.
        let env_key_url = env
            .base_url
            .as_deref()
            .map(normalise_url)
            .or(builtin_url.clone());
        let stored_key = st.and_then(|s| s.key.as_ref()).and_then(|sealed| {
            match self.sources.master_key.open(&key_context(name), sealed) {
                Ok(plain) => String::from_utf8(plain).ok().map(Secret::new),
                Err(e) => {
                    tracing::warn!(provider = %name, error = %e, "stored provider key does not open; ignoring it");
                    None
                }
            }
        });
        let stored_bound = st
            .and_then(|s| s.key_base_url.as_deref())
            .map(normalise_url);
        let mut key_note = None;
        let (key, key_source) = match (stored_key, env.api_key.clone()) {
            (Some(k), _) if stored_bound.as_deref() == Some(base_url.as_str()) => {
                (Some(k), Some("stored"))
            }
            (Some(_), env_key) => {
                key_note = Some(format!(
                    "the stored key was entered for {} and is not sent to {base_url}; enter it again for this URL",
                    stored_bound.as_deref().unwrap_or("another URL")
                ));
                match env_key {
                    Some(k) if env_key_url.as_deref() == Some(base_url.as_str()) => {
                        (Some(k), Some("environment"))
                    }
                    _ => (None, None),
                }
            }
            (None, Some(k)) if env_key_url.as_deref() == Some(base_url.as_str()) => {
                (Some(k), Some("environment"))
            }
            (None, Some(_)) => {
                key_note = Some(format!(
                    "{}_API_KEY is only sent to {}; not to {base_url}",
                    name.to_ascii_uppercase(),
                    env_key_url.as_deref().unwrap_or("its configured base URL")
                ));
                (None, None)
            }
            (None, None) => (None, None),
        };
        if let Some(note) = &key_note {
            tracing::warn!(provider = %name, "{note}");
        }
        // Admin-set URLs of remote providers go through the guard; the operator's and the
        // built-in ones do not.
        let admin_set = matches!(origin, UrlOrigin::Stored | UrlOrigin::Catalogue)
            && builtin_url.as_deref() != Some(base_url.as_str());
        let guarded = admin_set && !is_local;
        let refused = if base_url.is_empty() {
            Some(format!(
                "no base URL (set {}_BASE_URL)",
                name.to_ascii_uppercase()
            ))
        } else if guarded {
            match reqwest::Url::parse(&base_url) {
                Ok(u) => self
                    .sources
                    .guard
                    .check_url(&u)
                    .err()
                    .map(|b| format!("base URL refused by the outbound guard: {b}")),
                Err(e) => Some(format!("base URL is not a URL: {e}")),
            }
        } else {
            None
        };
        ResolvedProvider {
            base_url,
            key,
            key_source,
            key_note,
            is_local,
            guarded,
            refused,
        }
    }
}
