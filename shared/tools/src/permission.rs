//! Permissions a tool needs and a caller holds (BEHAVIOUR.md A4: read, write, execute, delete,
//! network, git, deploy, admin). A small bit set so the check on every call costs nothing.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Write,
    Execute,
    Delete,
    Network,
    Git,
    Deploy,
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Permission::Read,
        Permission::Write,
        Permission::Execute,
        Permission::Delete,
        Permission::Network,
        Permission::Git,
        Permission::Deploy,
        Permission::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Execute => "execute",
            Permission::Delete => "delete",
            Permission::Network => "network",
            Permission::Git => "git",
            Permission::Deploy => "deploy",
            Permission::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Grants(u16);

impl Grants {
    pub const NONE: Grants = Grants(0);

    pub fn all() -> Grants {
        Grants::of(&Permission::ALL)
    }

    pub fn of(perms: &[Permission]) -> Grants {
        Grants(perms.iter().fold(0, |acc, p| acc | p.bit()))
    }

    /// Parses a comma-separated list (`read,write`); unknown names are returned as the error.
    pub fn parse_list(raw: &str) -> Result<Grants, String> {
        let mut g = Grants::NONE;
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" || item.eq_ignore_ascii_case("all") {
                return Ok(Grants::all());
            }
            g = g.with(Permission::parse(item).ok_or_else(|| item.to_owned())?);
        }
        Ok(g)
    }

    pub fn without(self, p: Permission) -> Grants {
        Grants(self.0 & !p.bit())
    }

    pub fn with(self, p: Permission) -> Grants {
        Grants(self.0 | p.bit())
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions of `self` that `granted` lacks.
    pub fn missing_from(self, granted: Grants) -> Grants {
        Grants(self.0 & !granted.0)
    }

    pub fn union(self, other: Grants) -> Grants {
        Grants(self.0 | other.0)
    }

    pub fn intersect(self, other: Grants) -> Grants {
        Grants(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.names().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_missing() {
        let g = Grants::parse_list("read, network").unwrap();
        assert!(g.contains(Permission::Read) && g.contains(Permission::Network));
        let need = Grants::of(&[Permission::Read, Permission::Write]);
        assert_eq!(need.missing_from(g), Grants::of(&[Permission::Write]));
        assert_eq!(Grants::parse_list("read,fly").unwrap_err(), "fly");
        assert_eq!(Grants::parse_list("*").unwrap(), Grants::all());
        assert_eq!(need.to_string(), "read, write");
    }
}
