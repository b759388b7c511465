//! The `Host` a request names, checked against the names this server
//! answers to: a page on another site that rebinds its DNS name to this
//! server's address still sends its own name, and is refused (403).

/// The host names (optionally `name:port`) the server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    allowed: Vec<(String, Option<u16>)>,
}

/// The loopback names, the default.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl Default for HostPolicy {
    fn default() -> Self {
        HostPolicy::new(LOOPBACK_HOSTS)
    }
}

impl HostPolicy {
    /// Answering to `hosts` (`name` for any port, `name:port` for one).
    pub fn new<S: AsRef<str>>(hosts: impl IntoIterator<Item = S>) -> Self {
        HostPolicy {
            allowed: hosts
                .into_iter()
                .filter_map(|h| split_authority(h.as_ref()))
                .collect(),
        }
    }

    /// With `host` answered to as well.
    pub fn with(mut self, host: &str) -> Self {
        self.allowed.extend(split_authority(host));
        self
    }

    /// Whether a request with this `Host` header value is answered.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_authority(host) else {
            return false;
        };
        self.allowed
            .iter()
            .any(|(allowed, only)| *allowed == name && only.is_none_or(|p| Some(p) == port))
    }
}

/// `name[:port]` with the name lowercased (IPv6 in brackets).
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    let (name, port) = match authority.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && !port.contains(']') && !name.ends_with(':') => {
            (name, Some(port.parse().ok()?))
        }
        _ => (authority, None),
    };
    if name.is_empty() || name.contains(['/', '@', ' ']) {
        return None;
    }
    Some((name.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_on_any_port_and_named_hosts_are_answered() {
        let policy = HostPolicy::default().with("mcp.example.com");
        for host in [
            "localhost",
            "127.0.0.1:8080",
            "[::1]:9",
            "MCP.example.com",
            "mcp.example.com:443",
        ] {
            assert!(policy.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "127.0.0.2:80",
            "",
            "localhost:x",
            "mcp.example.com.evil",
        ] {
            assert!(!policy.allows(host), "{host}");
        }
        let one_port = HostPolicy::new(["api.example:8443"]);
        assert!(one_port.allows("api.example:8443"));
        assert!(!one_port.allows("api.example:8444"));
        assert!(!one_port.allows("api.example"));
    }
}
