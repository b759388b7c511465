//! How a backend's address appears in errors and logs.

/// `url` as errors and logs may show it: the user and password of its
/// authority (`redis://:PASSWORD@HOST`) replaced by `***`, the rest kept,
/// so that an error still names the server. Errors reach logs and, for a
/// call that failed, MCP clients.
pub(crate) fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_ends = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_ends].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_a_shown_url() {
        assert_eq!(
            without_credentials("redis://:pw@h:1/2"),
            "redis://***@h:1/2"
        );
        assert_eq!(
            without_credentials("rediss://user:p@ss@h:1#x"),
            "rediss://***@h:1#x"
        );
        assert_eq!(
            without_credentials("redis://h:1/2?a=b@c"),
            "redis://h:1/2?a=b@c"
        );
        assert_eq!(without_credentials("memory"), "memory");
    }
}
