//! IP networks (`10.0.0.0/8`, `::1/128`, or a bare address): trusted proxies at the edge,
//! outbound allow-lists. The arithmetic is `ipnet`'s; this adds the bare-address form and
//! treats IPv4-mapped IPv6 addresses as the IPv4 address they carry.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// An IP network; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&normalise(ip))
    }
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) compares as the IPv4 address it carries.
pub fn normalise(ip: IpAddr) -> IpAddr {
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
        let raw = s.trim();
        // `[::1]/128` and `[::1]` as well as the bare forms.
        let unbracketed = raw.replace(['[', ']'], "");
        let net = match unbracketed.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("'{raw}' is not an IP address or CIDR"))?;
                let prefix: u8 = prefix
                    .parse()
                    .map_err(|_| format!("'{raw}' has an invalid prefix length"))?;
                IpNet::new(normalise(addr), prefix)
                    .map_err(|_| format!("'{raw}' has an invalid prefix length"))?
            }
            None => IpNet::from(normalise(
                unbracketed
                    .parse::<IpAddr>()
                    .map_err(|_| format!("'{raw}' is not an IP address or CIDR"))?,
            )),
        };
        Ok(Cidr(net.trunc()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("::ffff:127.0.0.1".parse().unwrap()));
        let v6: Cidr = "[::1]/128".parse().unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<Cidr>().is_err());
        assert!("x".parse::<Cidr>().is_err());
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
    }
}
