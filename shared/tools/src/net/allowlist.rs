//! Hosts and networks that outbound requests may reach even though the guard would refuse
//! them (a local test receiver, an internal API an operator trusts).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network (`10.0.0.0/8`, `::1/128`); a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, normalise(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) compares as the IPv4 address it carries.
pub(crate) fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_start_matches('[');
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.trim_end_matches(']'), Some(p)),
            None => (s.trim_end_matches(']'), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR"))?;
        let addr = normalise(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}' has an invalid prefix length"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    hosts: Vec<String>,
    networks: Vec<Cidr>,
}

impl Allowlist {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of host names and IPs/CIDRs. A host entry `*.example.com`
    /// matches every subdomain of example.com.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut list = Allowlist::default();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(cidr) = item.parse::<Cidr>() {
                list.networks.push(cidr);
            } else if item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | '_'))
                && !item.contains('/')
            {
                list.hosts.push(item.to_ascii_lowercase());
            } else {
                return Err(format!("'{item}' is neither a host name nor an IP/CIDR"));
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.networks.is_empty()
    }

    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => *h == host,
        })
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_networks() {
        let a =
            Allowlist::parse("127.0.0.1, 10.0.0.0/8, api.internal, *.corp.example, ::1").unwrap();
        assert!(a.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!a.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(a.allows_ip("10.9.8.7".parse().unwrap()));
        assert!(a.allows_ip("::ffff:10.1.1.1".parse().unwrap()));
        assert!(a.allows_ip("::1".parse().unwrap()));
        assert!(a.allows_host("API.internal."));
        assert!(a.allows_host("x.corp.example"));
        assert!(!a.allows_host("corp.example"));
        assert!(Allowlist::parse("http://x/").is_err());
        assert!(Allowlist::parse("10.0.0.0/40").is_err());
    }
}
