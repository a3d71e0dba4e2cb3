//! The SSRF guard: which addresses outbound requests may reach.
//!
//! Refused unless allow-listed: loopback, private (RFC 1918, IPv6 ULA), link-local, CGNAT
//! (100.64/10), multicast, unspecified, broadcast, reserved and documentation ranges, and cloud
//! metadata endpoints. IPv4 carried inside IPv6 (mapped, NAT64, 6to4) is checked as IPv4.
//! Names are checked after DNS resolution: every address a name resolves to must pass, and the
//! guard is the client's resolver, so the connection goes to a checked address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::allowlist::Allowlist;
use crate::cidr::normalise;

/// How long a DNS lookup may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Host names of cloud metadata services, refused before any lookup.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// A target the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request to {target} refused: {reason}")]
pub struct Blocked {
    pub target: String,
    pub reason: String,
}

impl Blocked {
    fn new(target: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            reason: reason.into(),
        }
    }
}

/// Why `ip` may not be reached without an allow-list entry; `None` for a public address.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match normalise(ip) {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let reason =
        if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
            "cloud metadata address"
        } else if ip.is_unspecified() || o[0] == 0 {
            "unspecified address"
        } else if ip.is_loopback() {
            "loopback address"
        } else if ip.is_private() {
            "private address"
        } else if ip.is_link_local() {
            "link-local address"
        } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
            "carrier-grade NAT address"
        } else if ip.is_multicast() {
            "multicast address"
        } else if ip.is_broadcast() {
            "broadcast address"
        } else if o[0] >= 240 || is_reserved_v4(o) {
            "reserved address"
        } else {
            return None;
        };
    Some(reason)
}

/// IETF protocol assignments, documentation and benchmarking ranges.
fn is_reserved_v4(o: [u8; 4]) -> bool {
    let documentation = matches!(
        (o[0], o[1], o[2]),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
    );
    let protocol = o[0] == 192 && o[1] == 0 && o[2] == 0;
    let benchmarking = o[0] == 198 && (o[1] & 0xfe) == 18;
    documentation || protocol || benchmarking
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    // fd00:ec2::254 is AWS's IPv6 metadata endpoint.
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("cloud metadata address");
    }
    if ip.is_unspecified() {
        return Some("unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback address");
    }
    // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry IPv4.
    if seg[0..6] == [0, 0, 0, 0, 0, 0] {
        return v4_reason(Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32))
            .or(Some("reserved address"));
    }
    if seg[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reason(Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32));
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return v4_reason(v4);
    }
    let reason = if (seg[0] & 0xfe00) == 0xfc00 {
        "private address"
    } else if (seg[0] & 0xffc0) == 0xfe80 || (seg[0] & 0xffc0) == 0xfec0 {
        "link-local address"
    } else if (seg[0] & 0xff00) == 0xff00 {
        "multicast address"
    } else if (seg[0] == 0x2001 && seg[1] == 0x0db8) || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0])
    {
        // Documentation (2001:db8::/32) and discard (100::/64).
        "reserved address"
    } else {
        return None;
    };
    Some(reason)
}

/// The address policy, shared by every outbound request.
#[derive(Debug, Clone, Default)]
pub struct NetGuard {
    allow: Arc<Allowlist>,
}

impl NetGuard {
    pub fn new(allow: Allowlist) -> Self {
        Self {
            allow: Arc::new(allow),
        }
    }

    /// No allow-list: only public addresses.
    pub fn strict() -> Self {
        Self::default()
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allow
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.allow.allows_ip(ip) {
            return Ok(());
        }
        match blocked_reason(ip) {
            Some(reason) => Err(Blocked::new(ip.to_string(), reason)),
            None => Ok(()),
        }
    }

    /// The checks a URL passes before any lookup: scheme, host present, IP literals, metadata
    /// host names.
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Blocked::new(
                url.as_str(),
                format!(
                    "scheme '{}' is not allowed (http and https only)",
                    url.scheme()
                ),
            ));
        }
        match url.host() {
            None => Err(Blocked::new(url.as_str(), "the URL has no host")),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                let lower = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_HOSTS.contains(&lower.as_str()) && !self.allow.allows_host(&lower) {
                    return Err(Blocked::new(name, "cloud metadata host"));
                }
                Ok(())
            }
        }
    }

    /// Resolves `host` and checks every address; the addresses to connect to.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_ip(ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let lower = bare.trim_end_matches('.').to_ascii_lowercase();
        let host_allowed = self.allow.allows_host(&lower);
        if METADATA_HOSTS.contains(&lower.as_str()) && !host_allowed {
            return Err(Blocked::new(host, "cloud metadata host").into());
        }
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((bare, port)))
                .await
                .map_err(|_| ResolveError::Dns(format!("resolving {host} timed out")))?
                .map_err(|e| ResolveError::Dns(format!("cannot resolve {host}: {e}")))?
                .collect();
        if addrs.is_empty() {
            return Err(ResolveError::Dns(format!("{host} resolves to no address")));
        }
        if !host_allowed {
            for a in &addrs {
                if let Err(b) = self.check_ip(a.ip()) {
                    return Err(Blocked::new(
                        host,
                        format!("it resolves to {} ({})", a.ip(), b.reason),
                    )
                    .into());
                }
            }
        }
        Ok(addrs)
    }

    /// This guard as the DNS resolver of a `reqwest` client.
    pub fn resolver(&self) -> Arc<GuardResolver> {
        Arc::new(GuardResolver(self.clone()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Blocked(#[from] Blocked),
    #[error("{0}")]
    Dns(String),
}

/// `reqwest` calls this for every host name it connects to; a refused name fails the
/// connection with a [`Blocked`] in its error chain.
pub struct GuardResolver(NetGuard);

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match guard.resolve(&host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(ResolveError::Blocked(b)) => {
                    Err(Box::new(b) as Box<dyn std::error::Error + Send + Sync>)
                }
                Err(ResolveError::Dns(msg)) => Err(msg.into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<&'static str> {
        blocked_reason(s.parse().unwrap())
    }

    #[test]
    fn classifies_addresses() {
        assert_eq!(reason("127.0.0.1"), Some("loopback address"));
        assert_eq!(reason("10.1.2.3"), Some("private address"));
        assert_eq!(reason("172.16.0.1"), Some("private address"));
        assert_eq!(reason("192.168.1.1"), Some("private address"));
        assert_eq!(reason("169.254.169.254"), Some("cloud metadata address"));
        assert_eq!(reason("169.254.1.1"), Some("link-local address"));
        assert_eq!(reason("100.64.0.1"), Some("carrier-grade NAT address"));
        assert_eq!(reason("224.0.0.1"), Some("multicast address"));
        assert_eq!(reason("0.0.0.0"), Some("unspecified address"));
        assert_eq!(reason("255.255.255.255"), Some("broadcast address"));
        assert_eq!(reason("::1"), Some("loopback address"));
        assert_eq!(reason("::"), Some("unspecified address"));
        assert_eq!(reason("::ffff:127.0.0.1"), Some("loopback address"));
        assert_eq!(reason("64:ff9b::a00:1"), Some("private address"));
        assert_eq!(reason("2002:7f00:1::"), Some("loopback address"));
        assert_eq!(reason("fe80::1"), Some("link-local address"));
        assert_eq!(reason("fd00::1"), Some("private address"));
        assert_eq!(reason("fd00:ec2::254"), Some("cloud metadata address"));
        assert_eq!(reason("ff02::1"), Some("multicast address"));
        assert_eq!(reason("93.184.216.34"), None);
        assert_eq!(reason("2606:4700::1111"), None);
        assert_eq!(reason("100.128.0.1"), None);
    }
}
