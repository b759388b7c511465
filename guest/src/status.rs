//! The MCP Tasks state machine over the contract's [`TaskStatus`].

pub use pmcp_tasks_contract::TaskStatus;

/// Whether the state machine allows moving from `from` to `next`: only a
/// non-terminal task moves, and only to a different status.
pub(crate) fn can_transition(from: TaskStatus, next: TaskStatus) -> bool {
    !from.is_terminal() && from != next
}

#[cfg(test)]
mod tests {
    use super::can_transition;
    use super::TaskStatus::{self, *};

    #[test]
    fn exactly_the_eight_documented_transitions_are_legal() {
        let legal: Vec<(TaskStatus, TaskStatus)> = TaskStatus::ALL
            .iter()
            .flat_map(|&a| TaskStatus::ALL.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| can_transition(a, b))
            .collect();
        let expected = vec![
            (Working, InputRequired),
            (Working, Completed),
            (Working, Failed),
            (Working, Cancelled),
            (InputRequired, Working),
            (InputRequired, Completed),
            (InputRequired, Failed),
            (InputRequired, Cancelled),
        ];
        assert_eq!(legal, expected);
    }

    #[test]
    fn wire_names_are_snake_case() {
        assert_eq!(
            serde_json::to_string(&InputRequired).unwrap(),
            "\"input_required\""
        );
        assert_eq!(InputRequired.to_string(), "input_required");
    }
}
