//! The two protocol revisions one store serves.

use pmcp_tasks_host::StatusView;

/// The first protocol version with tasks as the extension.
pub(crate) const EXTENSION_PROTOCOL_VERSION: &str = "2026-07-28";

/// The protocol version a 2025-11-25 session is answered with.
pub(crate) const CORE_PROTOCOL_VERSION: &str = "2025-11-25";

/// Which MCP revision a request speaks; only the routing and the wire
/// shapes differ, the stored task is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Revision {
    /// MCP 2025-11-25: tasks in the core protocol.
    V2025_11_25,
    /// MCP 2026-07-28 and later: the `io.modelcontextprotocol/tasks` extension.
    V2026_07_28,
}

impl Revision {
    /// The revision of a negotiated protocol version (`YYYY-MM-DD` compares
    /// like dates); versions before 2026-07-28 speak the core tasks.
    pub fn of_protocol_version(version: &str) -> Revision {
        if version >= EXTENSION_PROTOCOL_VERSION {
            Revision::V2026_07_28
        } else {
            Revision::V2025_11_25
        }
    }

    /// The protocol version that names this revision.
    pub fn protocol_version(self) -> &'static str {
        match self {
            Revision::V2025_11_25 => CORE_PROTOCOL_VERSION,
            Revision::V2026_07_28 => EXTENSION_PROTOCOL_VERSION,
        }
    }

    /// How this revision reads a status: a tool result with `isError: true`
    /// is `failed` in 2025-11-25 and `completed` in 2026-07-28.
    pub fn status_view(self) -> StatusView {
        match self {
            Revision::V2025_11_25 => StatusView::Core,
            Revision::V2026_07_28 => StatusView::Extension,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_revisions_by_date() {
        assert_eq!(
            Revision::of_protocol_version("2025-06-18"),
            Revision::V2025_11_25
        );
        assert_eq!(
            Revision::of_protocol_version("2025-11-25"),
            Revision::V2025_11_25
        );
        assert_eq!(
            Revision::of_protocol_version("2026-07-28"),
            Revision::V2026_07_28
        );
        assert_eq!(
            Revision::of_protocol_version("2027-01-01"),
            Revision::V2026_07_28
        );
    }
}
