//! Progress at any rate, in bounded memory.
//!
//! A tool may report progress as often as it likes (a loop over 100 000
//! items reporting each is ordinary). What reaches the store is coalesced
//! per running task:
//!
//! - at most one status write is in flight, and at most one starts per
//!   interval (`ServiceConfig::progress_interval`): the first report is
//!   written at once, later ones wait for the interval;
//! - the latest message wins: one reported while a write is in flight or
//!   the interval runs replaces the one waiting, so memory per task is one
//!   message whatever the rate;
//! - messages are written by one writer in the order they were reported,
//!   so a poller never sees them go backwards;
//! - the outcome goes first: before the worker writes it, the relay is
//!   closed (the message waiting is dropped, the write in flight awaited),
//!   so no progress write contends with the outcome's compare-and-set.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

/// One task's relay of progress messages to the store.
#[derive(Default)]
pub(crate) struct ProgressRelay {
    state: Mutex<RelayState>,
    /// Told when the writer stops, and when the relay closes.
    changed: Notify,
}

#[derive(Default)]
struct RelayState {
    /// The latest message not yet written.
    latest: Option<String>,
    /// Whether a writer runs (writing, or waiting out the interval).
    writing: bool,
    /// Closed for the outcome: nothing more is written.
    closed: bool,
}

impl ProgressRelay {
    fn state(&self) -> std::sync::MutexGuard<'_, RelayState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `message` as the latest: `true` when the caller must start the
    /// writer (none runs), `false` when the running one will write it or
    /// the relay is closed.
    pub(crate) fn offer(&self, message: &str) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        match &mut state.latest {
            // Reuses the waiting message's buffer.
            Some(latest) => {
                latest.clear();
                latest.push_str(message);
            }
            None => state.latest = Some(message.to_owned()),
        }
        !std::mem::replace(&mut state.writing, true)
    }

    /// The message the writer writes next; `None` (and the writer is
    /// done) when there is none or the relay closed.
    fn take(&self) -> Option<String> {
        let mut state = self.state();
        let next = if state.closed {
            None
        } else {
            state.latest.take()
        };
        if next.is_none() {
            state.writing = false;
            drop(state);
            self.changed.notify_waiters();
        }
        next
    }

    /// Writes the messages offered, through `write`, until none is
    /// waiting: one at a time, at most one per `interval`. `write`
    /// returns `false` when the task is past writing to (ended, or taken
    /// over), which closes the relay.
    pub(crate) async fn run_writer<W, Fut>(&self, interval: Duration, mut write: W)
    where
        W: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        while let Some(message) = self.take() {
            if !write(message).await {
                self.close_now();
                self.take();
                return;
            }
            let closed = self.changed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.state().closed {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = closed => {}
            }
        }
    }

    fn close_now(&self) {
        let mut state = self.state();
        state.closed = true;
        state.latest = None;
    }

    /// Closes the relay for the outcome: the message waiting is dropped,
    /// and this returns once no write is in flight.
    pub(crate) async fn close(&self) {
        self.close_now();
        self.changed.notify_waiters();
        loop {
            let stopped = self.changed.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if !self.state().writing {
                return;
            }
            stopped.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_latest_message_waits_and_only_the_first_offer_starts_a_writer() {
        let relay = ProgressRelay::default();
        assert!(relay.offer("1"));
        assert!(!relay.offer("2"));
        assert!(!relay.offer("3"));
        assert_eq!(relay.take().as_deref(), Some("3"));
        assert_eq!(relay.take(), None, "nothing waits: the writer is done");
        assert!(relay.offer("4"), "a new writer");
    }

    #[tokio::test]
    async fn a_flood_is_written_once_per_interval_in_order_and_never_after_close() {
        let relay = Arc::new(ProgressRelay::default());
        let written = Arc::new(Mutex::new(Vec::new()));
        let interval = Duration::from_millis(100);
        let writer = |relay: Arc<ProgressRelay>, written: Arc<Mutex<Vec<String>>>| async move {
            relay
                .run_writer(interval, |message| {
                    let written = written.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        written.lock().unwrap().push(message);
                        true
                    }
                })
                .await;
        };
        let mut writers = Vec::new();
        let start = tokio::time::Instant::now();
        for i in 0..10_000u32 {
            if relay.offer(&i.to_string()) {
                writers.push(tokio::spawn(writer(relay.clone(), written.clone())));
            }
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let elapsed = start.elapsed();
        relay.close().await;
        let closed_at = written.lock().unwrap().len();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let written = written.lock().unwrap().clone();
        assert_eq!(written.len(), closed_at, "a write after close");
        let bound = (elapsed.as_millis() / interval.as_millis()) as usize + 2;
        assert!(
            written.len() <= bound,
            "{} writes in {elapsed:?}",
            written.len()
        );
        assert!(written.len() >= 2, "{written:?}");
        assert_eq!(writers.len(), 1, "one writer for the whole flood");
        let numbers: Vec<u32> = written.iter().map(|m| m.parse().unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        assert!(!relay.offer("late"), "closed");
    }

    #[tokio::test]
    async fn a_write_refused_closes_the_relay() {
        let relay = ProgressRelay::default();
        assert!(relay.offer("1"));
        relay
            .run_writer(Duration::from_millis(1), |_| async { false })
            .await;
        assert!(!relay.offer("2"));
        relay.close().await;
    }
}
