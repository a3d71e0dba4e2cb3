//! E-mail address syntax: the practical subset of RFC 5322 that real mailboxes use (dot-atom
//! local part, hostname domain). Anything else is refused before it reaches storage.

/// Characters allowed in a local part besides letters and digits (RFC 5322 `atext`).
const ATEXT: &[u8] = b"!#$%&'*+-/=?^_`{|}~";

pub fn is_valid(email: &str) -> bool {
    if email.len() > 254 {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    valid_local(local) && valid_domain(domain)
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || ATEXT.contains(&b))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_real_addresses() {
        for e in [
            "ada@example.com",
            "o'brien@example.co.uk",
            "first.last+tag@sub-domain.example.org",
            "x@a.io",
        ] {
            assert!(is_valid(e), "{e}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        for e in [
            "",
            "nope",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            "a b@example.com",
            "a@exa mple.com",
            "a..b@example.com",
            ".a@example.com",
            "a@-x.com",
            "a@example.com'--@example.com",
            "a@ex_ample.com",
            "\0@example.com",
            "a@example.123",
        ] {
            assert!(!is_valid(e), "{e}");
        }
    }
}
