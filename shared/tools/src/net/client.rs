//! Outbound HTTP requests behind the guard: the guard resolves every name (and refuses IP
//! literals itself), redirects are followed by hand so each hop's URL is checked, credentials
//! are dropped when a redirect changes origin, and the body is read up to a size limit within
//! one overall deadline.

use std::time::Duration;

use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, PROXY_AUTHORIZATION,
};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::error::ToolError;
use gathering_net::{Blocked, NetGuard};

#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Default and greatest time for a whole request, redirects included.
    pub timeout: Duration,
    pub max_timeout: Duration,
    /// Largest response body read; the rest is dropped and the response marked truncated.
    pub max_response_bytes: usize,
    /// Largest request body sent.
    pub max_request_bytes: usize,
    pub max_redirects: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(120),
            max_response_bytes: 5 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            max_redirects: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// Tighter time limit than the client's default (capped at `max_timeout`).
    pub timeout: Option<Duration>,
    /// Tighter size limit than the client's.
    pub max_bytes: Option<usize>,
    pub follow_redirects: bool,
}

impl OutboundRequest {
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            max_bytes: None,
            follow_redirects: true,
        }
    }

    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.headers.insert(
            CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        self.body = Some(serde_json::to_vec(value).unwrap_or_default());
        self
    }
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The URL that answered (after redirects).
    pub url: Url,
    pub body: Vec<u8>,
    pub truncated: bool,
    pub redirects: u32,
}

impl OutboundResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An HTTP client whose every connection goes through the guard.
#[derive(Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    guard: NetGuard,
    limits: HttpLimits,
}

impl GuardedClient {
    pub fn new(guard: NetGuard, limits: HttpLimits) -> Result<Self, ToolError> {
        gathering_core::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .dns_resolver(guard.resolver())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("GatheRing/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ToolError::Failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            guard,
            limits,
        })
    }

    pub fn guard(&self) -> &NetGuard {
        &self.guard
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    pub async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, ToolError> {
        if let Some(body) = &req.body
            && body.len() > self.limits.max_request_bytes
        {
            return Err(ToolError::TooLarge(format!(
                "request body is {} bytes, more than the limit of {}",
                body.len(),
                self.limits.max_request_bytes
            )));
        }
        let timeout = req
            .timeout
            .unwrap_or(self.limits.timeout)
            .min(self.limits.max_timeout);
        let max_bytes = req
            .max_bytes
            .unwrap_or(self.limits.max_response_bytes)
            .min(self.limits.max_response_bytes);
        let target = req.url.to_string();
        match tokio::time::timeout(timeout, self.send_inner(req, max_bytes)).await {
            Ok(r) => r,
            Err(_) => Err(ToolError::Failed(format!(
                "request to {target} timed out after {} ms",
                timeout.as_millis()
            ))),
        }
    }

    async fn send_inner(
        &self,
        req: OutboundRequest,
        max_bytes: usize,
    ) -> Result<OutboundResponse, ToolError> {
        let OutboundRequest {
            mut method,
            mut url,
            mut headers,
            mut body,
            follow_redirects,
            ..
        } = req;
        let mut redirects = 0u32;
        loop {
            self.guard.check_url(&url).map_err(refused)?;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = &body {
                builder = builder.body(b.clone());
            }
            let mut resp = builder.send().await.map_err(|e| transport(&url, &e))?;
            let status = resp.status();
            if follow_redirects
                && status.is_redirection()
                && let Some(location) = resp.headers().get(LOCATION)
            {
                redirects += 1;
                if redirects > self.limits.max_redirects {
                    return Err(ToolError::Failed(format!(
                        "more than {} redirects",
                        self.limits.max_redirects
                    )));
                }
                let location = location.to_str().map_err(|_| {
                    ToolError::Failed("redirect with an invalid Location header".into())
                })?;
                let next = url.join(location).map_err(|e| {
                    ToolError::Failed(format!("redirect to an invalid URL '{location}': {e}"))
                })?;
                if status == StatusCode::SEE_OTHER
                    || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                        && method == Method::POST)
                {
                    method = Method::GET;
                    body = None;
                    headers.remove(CONTENT_TYPE);
                    headers.remove(CONTENT_LENGTH);
                }
                if next.origin() != url.origin() {
                    headers.remove(AUTHORIZATION);
                    headers.remove(COOKIE);
                    headers.remove(PROXY_AUTHORIZATION);
                }
                url = next;
                continue;
            }
            let resp_headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut buf = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&url, &e))? {
                let room = max_bytes.saturating_sub(buf.len());
                if chunk.len() > room {
                    buf.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                buf.extend_from_slice(&chunk);
            }
            return Ok(OutboundResponse {
                status: status.as_u16(),
                headers: resp_headers,
                url,
                body: buf,
                truncated,
                redirects,
            });
        }
    }
}

fn refused(b: Blocked) -> ToolError {
    ToolError::Refused(b.to_string())
}

/// A transport error; a guard refusal inside the error chain (from the resolver) wins.
fn transport(url: &Url, e: &reqwest::Error) -> ToolError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut chain = Vec::new();
    while let Some(err) = source {
        if let Some(b) = err.downcast_ref::<Blocked>() {
            return refused(b.clone());
        }
        chain.push(err.to_string());
        source = err.source();
    }
    chain.dedup();
    ToolError::Failed(format!("request to {url} failed: {}", chain.join(": ")))
}
