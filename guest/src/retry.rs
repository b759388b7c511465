//! What happens to a task whose run ended without an outcome: its worker
//! was lost (the lease lapsed) or handed it off (its replica shut down).
//! Pure rules; the store applies them in one compare-and-swap.

use pmcp_tasks_contract::RetryPolicy;

/// What becomes of a task whose worker was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterLoss {
    /// It runs again: claimable at `ready_at`, as run `attempt` of `of`.
    Retry {
        /// When a worker may claim it (ms).
        ready_at: u64,
        /// The run it will be (counting losses: 2 for the first retry).
        attempt: u32,
        /// The policy's runs.
        of: u32,
    },
    /// It ends `failed`: no policy, or every attempt used.
    Fail {
        /// Why no retry, for the error (`None`: not retryable).
        exhausted: Option<u32>,
    },
}

/// The decision for a task with `policy` that lost its worker for the
/// `losses`-th time (1 for the first) at `now`; `jitter` is a random
/// number: the wait is cut by up to half of it, so that tasks lost
/// together do not all come back at once.
pub(crate) fn after_loss(
    policy: Option<&RetryPolicy>,
    losses: u32,
    now: u64,
    jitter: u64,
) -> AfterLoss {
    let Some(policy) = policy else {
        return AfterLoss::Fail { exhausted: None };
    };
    let attempt = losses.saturating_add(1);
    if attempt > policy.max_attempts {
        return AfterLoss::Fail {
            exhausted: Some(policy.max_attempts),
        };
    }
    let wait = policy.backoff_before(attempt);
    let cut = match wait / 2 {
        0 => 0,
        half => jitter % (half + 1),
    };
    AfterLoss::Retry {
        ready_at: now.saturating_add(wait - cut),
        attempt,
        of: policy.max_attempts,
    }
}

/// The status message of a task waiting for its next run.
pub(crate) fn waiting_message(attempt: u32, of: u32, wait_ms: u64) -> String {
    format!("attempt {attempt} of {of} after its replica was lost; it runs again in {wait_ms} ms")
}

/// The status message of a task handed off by a replica shutting down.
pub(crate) const HANDED_OFF: &str =
    "handed off: its replica is shutting down; another replica resumes it";

/// A policy a task may be created with: at least one run, a wait no
/// longer than the longest.
pub(crate) fn check_policy(policy: &RetryPolicy) -> Result<(), String> {
    if policy.max_attempts == 0 {
        return Err("a retry policy needs at least one attempt".into());
    }
    if policy.max_attempts > 100 {
        return Err(format!(
            "a retry policy of {} attempts is more than 100",
            policy.max_attempts
        ));
    }
    if policy.backoff_ms > policy.backoff_max_ms {
        return Err(format!(
            "a retry policy's backoff ({} ms) exceeds its maximum ({} ms)",
            policy.backoff_ms, policy.backoff_max_ms
        ));
    }
    if policy.backoff_max_ms > crate::config::MAX_TTL_MS {
        return Err("a retry policy's maximum backoff is longer than any task lives".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        backoff_ms: 1_000,
        backoff_max_ms: 1_500,
    };

    #[test]
    fn a_task_without_a_policy_fails_at_its_first_loss() {
        assert_eq!(
            after_loss(None, 1, 0, 0),
            AfterLoss::Fail { exhausted: None }
        );
    }

    #[test]
    fn losses_retry_until_the_attempts_are_used() {
        assert_eq!(
            after_loss(Some(&THREE), 1, 10, 0),
            AfterLoss::Retry {
                ready_at: 1_010,
                attempt: 2,
                of: 3
            }
        );
        // Doubled, then capped.
        assert_eq!(
            after_loss(Some(&THREE), 2, 10, 0),
            AfterLoss::Retry {
                ready_at: 1_510,
                attempt: 3,
                of: 3
            }
        );
        assert_eq!(
            after_loss(Some(&THREE), 3, 10, 0),
            AfterLoss::Fail { exhausted: Some(3) }
        );
    }

    #[test]
    fn jitter_cuts_the_wait_by_at_most_half() {
        for jitter in [0, 1, 499, 500, 501, u64::MAX] {
            let AfterLoss::Retry { ready_at, .. } = after_loss(Some(&THREE), 1, 0, jitter) else {
                panic!("a retry");
            };
            assert!((500..=1_000).contains(&ready_at), "{ready_at}");
        }
    }

    #[test]
    fn policies_are_checked() {
        assert!(check_policy(&THREE).is_ok());
        assert!(check_policy(&RetryPolicy::attempts(0)).is_err());
        assert!(check_policy(&RetryPolicy {
            backoff_ms: 2,
            backoff_max_ms: 1,
            ..THREE
        })
        .is_err());
    }
}
