//! Rate limits per client IP and endpoint, in the contract's tiers (§0): auth 5/min (login and
//! register), write 30/min (mutations), read 120/min (reads), health 300/min; `GET /`,
//! `/ws/stats`, WebSockets and preflights are unlimited. The auth and write tiers are counted
//! in PostgreSQL so they hold across edges ([`super::shared_limit`]); the read and health tiers
//! are per instance, one actix-governor middleware each, limiting only its own requests (the
//! others map to a whitelisted key).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::{
    GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::json;

use gathering_net::Cidr;

use crate::config::RateLimits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Auth,
    Write,
    Read,
    Health,
}

/// The tier of a request; `None` when unlimited.
pub fn tier_of(method: &Method, path: &str) -> Option<Tier> {
    let p = path
        .strip_prefix("/api")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(path);
    if *method == Method::OPTIONS || p == "/" || p.is_empty() || p == "/ws" || p.starts_with("/ws/")
    {
        return None;
    }
    if p == "/health" || p.starts_with("/health/") {
        return Some(Tier::Health);
    }
    if matches!(p, "/auth/login" | "/auth/login/json" | "/auth/register")
        || (p == "/auth/session" && *method == Method::POST)
    {
        return Some(Tier::Auth);
    }
    if *method == Method::GET || *method == Method::HEAD {
        Some(Tier::Read)
    } else {
        Some(Tier::Write)
    }
}

/// The endpoint a counter belongs to: the path with ids replaced, so `/agents/1` and
/// `/agents/2` share one counter as they share one route.
pub fn endpoint(method: &Method, path: &str) -> String {
    let p = path
        .strip_prefix("/api")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    let mut out = String::with_capacity(p.len() + 8);
    out.push_str(method.as_str());
    for seg in p.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        let is_id = seg.bytes().all(|b| b.is_ascii_digit())
            || (seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
        out.push_str(if is_id { "{id}" } else { seg });
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Exempt,
    Limited(IpAddr, String),
}

#[derive(Clone)]
pub struct TierKey {
    tier: Tier,
    per_minute: u32,
    trusted: Arc<Vec<Cidr>>,
}

impl KeyExtractor for TierKey {
    type Key = Key;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<Key, Self::KeyExtractionError> {
        if tier_of(req.method(), req.path()) != Some(self.tier) {
            return Ok(Key::Exempt);
        }
        let ip = super::client_ip::resolve(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &self.trusted,
        )
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(Key::Limited(ip, endpoint(req.method(), req.path())))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1);
        let reset = chrono::Utc::now().timestamp() + wait as i64;
        response
            .insert_header(("Retry-After", wait.to_string()))
            .insert_header(("X-RateLimit-Limit", self.per_minute.to_string()))
            .insert_header(("X-RateLimit-Remaining", "0"))
            .insert_header(("X-RateLimit-Reset", reset.to_string()))
            .json(json!({ "error": format!("Rate limit exceeded: {} per 1 minute", self.per_minute) }))
    }

    fn whitelisted_keys(&self) -> Vec<Key> {
        vec![Key::Exempt]
    }
}

pub type TierConfig = GovernorConfig<TierKey, NoOpMiddleware<QuantaInstant>>;

/// One governor configuration per per-instance tier: read, then health.
pub fn configs(limits: &RateLimits, trusted: &[Cidr]) -> Vec<TierConfig> {
    let trusted = Arc::new(trusted.to_vec());
    [(Tier::Read, limits.read), (Tier::Health, limits.health)]
        .into_iter()
        .filter_map(|(tier, per_minute)| {
            GovernorConfigBuilder::default()
                .period(Duration::from_secs(60) / per_minute.max(1))
                .burst_size(per_minute.max(1))
                .key_extractor(TierKey {
                    tier,
                    per_minute,
                    trusted: trusted.clone(),
                })
                .finish()
        })
        .collect()
}

/// Forgets idle counters every minute so the key space stays bounded.
pub fn spawn_retention(configs: &[TierConfig], shutdown: gathering_core::Shutdown) {
    let limiters: Vec<_> = configs.iter().map(|c| c.limiter().clone()).collect();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = shutdown.wait() => return,
            }
            for l in &limiters {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers() {
        assert_eq!(tier_of(&Method::POST, "/auth/login"), Some(Tier::Auth));
        assert_eq!(
            tier_of(&Method::POST, "/api/auth/register"),
            Some(Tier::Auth)
        );
        assert_eq!(tier_of(&Method::GET, "/health/ready"), Some(Tier::Health));
        assert_eq!(tier_of(&Method::GET, "/agents"), Some(Tier::Read));
        assert_eq!(tier_of(&Method::DELETE, "/api/agents/3"), Some(Tier::Write));
        assert_eq!(tier_of(&Method::GET, "/"), None);
        assert_eq!(tier_of(&Method::GET, "/ws/stats"), None);
        assert_eq!(tier_of(&Method::OPTIONS, "/agents"), None);
    }

    #[test]
    fn endpoints_share_counters_across_ids() {
        assert_eq!(
            endpoint(&Method::GET, "/api/agents/12/history"),
            "GET/agents/{id}/history"
        );
        assert_eq!(
            endpoint(&Method::GET, "/agents/7/history"),
            "GET/agents/{id}/history"
        );
        assert_eq!(
            endpoint(
                &Method::GET,
                "/projects/3f2b9c1e-aaaa-bbbb-cccc-123456789abc"
            ),
            "GET/projects/{id}"
        );
    }
}
