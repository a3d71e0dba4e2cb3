//! Where the login page sends the user back to: only a path of this edge. Anything a browser
//! could resolve to another host is refused (an open redirect would let a phishing link borrow
//! the edge's name): `//host` and `/\host` (scheme-relative; browsers treat `\` like `/`),
//! absolute URLs, control characters and whitespace (stripped by browsers before resolving).

/// Longest `next` kept.
const MAX_LEN: usize = 2048;

/// `next` if it is a same-origin relative path, else `None`.
pub fn checked(next: &str) -> Option<&str> {
    let ok = next.len() <= MAX_LEN
        && next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        // A percent-encoded `/` or `\` right after the first is decoded by some servers and
        // proxies before a browser sees it; nothing legitimate starts that way.
        && !next[1..].to_ascii_lowercase().starts_with("%2f")
        && !next[1..].to_ascii_lowercase().starts_with("%5c");
    ok.then_some(next)
}

/// `next`, or the dashboard's root when it is missing or refused.
pub fn or_root(next: Option<&str>) -> &str {
    next.and_then(checked).unwrap_or("/")
}

/// The login page's address for a user who wanted `next` (path and query of the request).
pub fn login_url(next: &str, error: Option<&str>) -> String {
    let encoded = percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC);
    match error {
        Some(e) => format!("/login?error={e}&next={encoded}"),
        None => format!("/login?next={encoded}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths() {
        for good in ["/", "/agents", "/agents/1?tab=logs#x", "/a%20b"] {
            assert_eq!(checked(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "agents",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "http:/evil.example",
            "javascript:alert(1)",
            "/ok\\..\\x",
            "/a b",
            "/a\tb",
            "/\n/evil.example",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "/é",
        ] {
            assert_eq!(checked(bad), None, "{bad:?}");
        }
        assert_eq!(or_root(Some("//evil")), "/");
        assert_eq!(or_root(None), "/");
        assert_eq!(
            login_url("/a?b=1", Some("credentials")),
            "/login?error=credentials&next=%2Fa%3Fb%3D1"
        );
    }
}
