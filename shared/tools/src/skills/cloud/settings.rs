//! The cloud skill's object store: set by the operator, never by the agent (the tools name a
//! bucket and a key, not a server).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `GATHERING_CLOUD_S3_ENDPOINT` | the S3-compatible endpoint (`https://s3.eu-west-1.amazonaws.com`, `http://minio.internal:9000`) | none (the tools answer that nothing is configured) |
//! | `GATHERING_CLOUD_S3_BUCKETS` | the buckets the tools may touch (comma list); any other is refused | none |
//! | `GATHERING_CLOUD_S3_REGION` | signing region | `us-east-1` |
//! | `GATHERING_CLOUD_S3_ACCESS_KEY_ID`, `GATHERING_CLOUD_S3_SECRET_ACCESS_KEY` | credentials (requests are signed with SigV4) | none (unsigned requests) |
//! | `GATHERING_CLOUD_S3_URL_STYLE` | `path` or `virtual-host` | `virtual-host` for `*.amazonaws.com`, else `path` |
//! | `GATHERING_CLOUD_S3_ALLOW_PRIVATE` | `true` lets the endpoint be a private/loopback address (the operator's own server); the outbound guard still refuses every other private address | `false` |
//! | `GATHERING_CLOUD_MAX_OBJECT_BYTES` | largest object read or written | 10 MiB |
//!
//! Every request goes through the outbound guard (the endpoint is resolved and checked on
//! each connection, redirects are not followed).

use gathering_core::Secret;
use gathering_core::config::{self, ConfigError, Vars};
use url::Url;

use crate::net::Allowlist;

pub const DEFAULT_MAX_OBJECT_BYTES: usize = 10 * 1024 * 1024;
/// Most keys one list returns (S3's own page size).
pub const MAX_LIST: u32 = 1000;

#[derive(Clone)]
pub struct CloudSettings {
    pub endpoint: Url,
    pub region: String,
    pub buckets: Vec<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub path_style: bool,
    /// The guard's allow-list for the endpoint: the operator's `GATHERING_HTTP_ALLOWLIST`, or
    /// the endpoint's host alone when `GATHERING_CLOUD_S3_ALLOW_PRIVATE` is set.
    pub allowlist: Allowlist,
    pub max_object_bytes: usize,
}

impl std::fmt::Debug for CloudSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudSettings")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .field("buckets", &self.buckets)
            .field("path_style", &self.path_style)
            .field("max_object_bytes", &self.max_object_bytes)
            .finish_non_exhaustive()
    }
}

impl CloudSettings {
    /// `None` when no endpoint is configured.
    pub fn from_vars(
        vars: &impl Vars,
        http_allowlist: &Allowlist,
    ) -> Result<Option<Self>, ConfigError> {
        const ENDPOINT: &str = "GATHERING_CLOUD_S3_ENDPOINT";
        let Some(raw) = vars.get(ENDPOINT).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let endpoint = Url::parse(&raw).map_err(|e| ConfigError::new(ENDPOINT, e.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(ConfigError::new(
                ENDPOINT,
                "must be an http(s) URL with a host",
            ));
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(ConfigError::new(
                ENDPOINT,
                "must not hold credentials (use GATHERING_CLOUD_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY)",
            ));
        }
        let host = endpoint
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let buckets = config::list(vars, "GATHERING_CLOUD_S3_BUCKETS");
        if buckets.is_empty() {
            return Err(ConfigError::new(
                "GATHERING_CLOUD_S3_BUCKETS",
                "name the buckets the cloud skill may use (comma list)",
            ));
        }
        let path_style = match vars.get("GATHERING_CLOUD_S3_URL_STYLE").as_deref() {
            None | Some("") => !host.ends_with(".amazonaws.com"),
            Some("path") => true,
            Some("virtual-host") => false,
            Some(_) => {
                return Err(ConfigError::new(
                    "GATHERING_CLOUD_S3_URL_STYLE",
                    "is path or virtual-host",
                ));
            }
        };
        let allowlist = if config::bool_or(vars, "GATHERING_CLOUD_S3_ALLOW_PRIVATE", false)? {
            Allowlist::parse(&host).map_err(|e| ConfigError::new(ENDPOINT, e))?
        } else {
            http_allowlist.clone()
        };
        Ok(Some(Self {
            endpoint,
            region: config::string_or(vars, "GATHERING_CLOUD_S3_REGION", "us-east-1"),
            buckets,
            access_key_id: vars
                .get("GATHERING_CLOUD_S3_ACCESS_KEY_ID")
                .filter(|s| !s.is_empty()),
            secret_access_key: vars
                .get("GATHERING_CLOUD_S3_SECRET_ACCESS_KEY")
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            path_style,
            allowlist,
            max_object_bytes: config::parse_or(
                vars,
                "GATHERING_CLOUD_MAX_OBJECT_BYTES",
                DEFAULT_MAX_OBJECT_BYTES,
            )?,
        }))
    }
}
