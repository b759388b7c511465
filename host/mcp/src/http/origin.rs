//! Which browser origins may call the endpoint (DNS rebinding: a page on
//! another site must not reach a server on the user's machine). A request
//! without `Origin` is not from a browser page and passes; one whose
//! `Origin` is not allowed gets 403.

/// One allowed origin: `scheme://host[:port]`, the port `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    scheme: String,
    host: String,
    /// `None`: any port.
    port: Option<u16>,
}

/// The origins a server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<Allowed>,
}

/// The origins of pages on this machine, any port: the default.
pub const LOOPBACK_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// An origin that is not `scheme://host[:port]` (with `*` for any port).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an origin (scheme://host[:port], port * for any): {0}")]
pub struct BadOrigin(String);

impl Default for OriginPolicy {
    fn default() -> Self {
        OriginPolicy::new(LOOPBACK_ORIGINS).unwrap_or_else(|e| unreachable!("{e}"))
    }
}

impl OriginPolicy {
    /// Accepts exactly `origins` (`http://app.example.com`,
    /// `https://app.example.com:8443`, `http://localhost:*`).
    pub fn new<I, S>(origins: I) -> Result<Self, BadOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed = origins
            .into_iter()
            .map(|o| parse(o.as_ref(), true).ok_or_else(|| BadOrigin(o.as_ref().to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(OriginPolicy { allowed })
    }

    /// Whether a request with this `Origin` header value may be served.
    pub fn allows(&self, origin: &str) -> bool {
        let Some(origin) = parse(origin, false) else {
            return false;
        };
        self.allowed.iter().any(|a| {
            a.scheme == origin.scheme
                && a.host == origin.host
                && a.port.is_none_or(|port| Some(port) == origin.port)
        })
    }
}

/// `scheme://host[:port]`, lower-cased, the default port made explicit;
/// `*` as the port only where `wildcard`.
fn parse(origin: &str, wildcard: bool) -> Option<Allowed> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let port = match port {
        None => Some(default_port),
        Some("*") if wildcard => None,
        Some(port) => Some(port.parse::<u16>().ok()?),
    };
    Some(Allowed {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_pages_pass_by_default_and_others_do_not() {
        let policy = OriginPolicy::default();
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://[::1]:5173",
            "https://localhost",
            "HTTP://LOCALHOST:1",
        ] {
            assert!(policy.allows(ok), "{ok}");
        }
        for refused in [
            "http://evil.example",
            "http://localhost.evil.example",
            "null",
            "file://",
            "http://127.0.0.1.evil.example:80",
            "",
        ] {
            assert!(!policy.allows(refused), "{refused}");
        }
    }

    #[test]
    fn configured_origins_match_scheme_host_and_port() {
        let policy =
            OriginPolicy::new(["https://app.example.com", "http://dev.example.com:*"]).unwrap();
        assert!(policy.allows("https://app.example.com"));
        assert!(policy.allows("https://app.example.com:443"));
        assert!(!policy.allows("https://app.example.com:8443"));
        assert!(!policy.allows("http://app.example.com"));
        assert!(policy.allows("http://dev.example.com:9000"));
        assert!(
            !policy.allows("http://localhost:3000"),
            "the list replaces the default"
        );
        assert!(OriginPolicy::new(["app.example.com"]).is_err());
        assert!(OriginPolicy::new(["http://a.example/path"]).is_err());
    }
}
