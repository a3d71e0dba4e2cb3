//! Hosts and networks that outbound requests may reach even though the guard would refuse
//! them (a local test receiver, an internal API an operator trusts).

use std::net::IpAddr;

use crate::cidr::Cidr;

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
