//! The client's address: the TCP peer, or, when the peer is a configured trusted proxy, the
//! right-most address of `X-Forwarded-For` that is not itself a trusted proxy. A client cannot
//! choose its own rate-limit key or audit IP by sending the header directly.

use std::net::IpAddr;

use actix_web::HttpMessage;
use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;
use gathering_net::Cidr;

use super::RequestId;

fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip, trusted))
        .or(Some(peer))
}

/// What the audit and the auth service record about the caller.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl ClientMeta {
    pub fn of(req: &ServiceRequest, trusted: &[Cidr]) -> Self {
        Self::from_parts(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            trusted,
            req.extensions().get::<RequestId>(),
        )
    }

    pub fn from_parts(
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        trusted: &[Cidr],
        id: Option<&RequestId>,
    ) -> Self {
        Self {
            ip: resolve(peer, headers, trusted),
            user_agent: headers
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
            request_id: id.map(|r| r.0.clone()),
        }
    }

    pub fn to_proto(&self) -> gathering_proto::v1::ClientInfo {
        gathering_proto::v1::ClientInfo {
            ip: self.ip.map(|i| i.to_string()).unwrap_or_default(),
            user_agent: self.user_agent.clone().unwrap_or_default(),
            request_id: self.request_id.clone().unwrap_or_default(),
        }
    }
}

impl actix_web::FromRequest for ClientMeta {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let trusted = req
            .app_data::<actix_web::web::Data<crate::state::AppState>>()
            .map(|s| s.config.trusted_proxies.clone())
            .unwrap_or_default();
        let ext = req.extensions();
        std::future::ready(Ok(Self::from_parts(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &trusted,
            ext.get::<RequestId>(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(xff).unwrap(),
        );
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted: Vec<Cidr> = vec!["10.0.0.1".parse().unwrap()];
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let h = headers("1.2.3.4, 203.0.113.9");
        assert_eq!(
            resolve(Some(client), &h, &trusted),
            Some(client),
            "direct client cannot spoof"
        );
        assert_eq!(
            resolve(Some(proxy), &h, &trusted),
            Some(client),
            "right-most untrusted"
        );
        assert_eq!(
            resolve(Some(proxy), &HeaderMap::new(), &trusted),
            Some(proxy)
        );
        let chain = headers("198.51.100.7, 10.0.0.2");
        let network: Vec<Cidr> = vec!["10.0.0.0/24".parse().unwrap()];
        assert_eq!(
            resolve(Some(proxy), &chain, &network),
            Some("198.51.100.7".parse().unwrap())
        );
    }
}
