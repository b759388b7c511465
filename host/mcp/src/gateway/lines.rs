//! The upstream's stdout, read with a bound on a message's size.
//!
//! rmcp's stdio transport drops a line longer than its limit with no more
//! than a log line, so a call whose answer was that line would wait out
//! the idle timeout. [`LineGuard`] sits in front of it: a line over the
//! gateway's limit is cut short (a newline passed on at once, so rmcp
//! reads an incomplete line it discards as invalid JSON and stays in
//! step), the rest of it is swallowed, and once it ends the connection's
//! calls are told its size ([`Oversized`]), so each fails at once saying
//! why.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;

/// Tells a connection's calls that the upstream sent a message over the
/// limit, which was discarded.
#[derive(Default)]
pub(super) struct Oversized {
    /// How many messages were discarded so far.
    discarded: AtomicU64,
    /// The size of the last one, in bytes without its newline.
    last_bytes: AtomicU64,
    notify: Notify,
}

impl Oversized {
    fn discarded_one(&self, bytes: u64) {
        self.last_bytes.store(bytes, Ordering::SeqCst);
        self.discarded.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// The size of the last message discarded, in bytes.
    pub(super) fn last_bytes(&self) -> u64 {
        self.last_bytes.load(Ordering::SeqCst)
    }

    /// How many messages were discarded so far.
    pub(super) fn count(&self) -> u64 {
        self.discarded.load(Ordering::SeqCst)
    }

    /// Resolves once a message after the `seen`-th is discarded.
    pub(super) async fn after(&self, seen: u64) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() > seen {
                return;
            }
            notified.await;
        }
    }
}

/// A reader passing lines of at most `max` bytes through unchanged, and
/// cutting longer ones short (see the module documentation).
pub(super) struct LineGuard<R> {
    inner: R,
    max: usize,
    /// Bytes of the current line so far (passed on, or swallowed).
    line: usize,
    /// Swallowing the rest of a line that was cut short.
    swallowing: bool,
    oversized: Arc<Oversized>,
}

impl<R> LineGuard<R> {
    pub(super) fn new(inner: R, max: usize, oversized: Arc<Oversized>) -> Self {
        LineGuard {
            inner,
            max,
            line: 0,
            swallowing: false,
            oversized,
        }
    }

    /// Filters `data` (just read) in place: the bytes to pass on are the
    /// first of the returned count.
    fn filter(&mut self, data: &mut [u8]) -> usize {
        let mut kept = 0;
        for i in 0..data.len() {
            let byte = data[i];
            if self.swallowing {
                if byte == b'\n' {
                    self.swallowing = false;
                    self.oversized.discarded_one(self.line as u64);
                    self.line = 0;
                } else {
                    self.line += 1;
                }
                continue;
            }
            if byte == b'\n' {
                self.line = 0;
            } else if self.line == self.max {
                // One byte over: cut the line here, count the rest.
                self.swallowing = true;
                self.line += 1;
                data[kept] = b'\n';
                kept += 1;
                continue;
            } else {
                self.line += 1;
            }
            data[kept] = byte;
            kept += 1;
        }
        kept
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for LineGuard<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            let start = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            let read = buf.filled().len() - start;
            if read == 0 {
                return Poll::Ready(Ok(()));
            }
            let kept = this.filter(&mut buf.filled_mut()[start..]);
            buf.set_filled(start + kept);
            // Everything read was swallowed: read on rather than report
            // an end of stream.
            if kept > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn through(input: &[u8], max: usize) -> (Vec<u8>, u64) {
        through_sized(input, max).await.0
    }

    async fn through_sized(input: &[u8], max: usize) -> ((Vec<u8>, u64), u64) {
        let oversized = Arc::new(Oversized::default());
        let mut guard = LineGuard::new(input, max, oversized.clone());
        let mut out = Vec::new();
        guard.read_to_end(&mut out).await.unwrap();
        ((out, oversized.count()), oversized.last_bytes())
    }

    #[tokio::test]
    async fn lines_within_the_limit_pass_unchanged() {
        let input = b"{\"a\"}\n12345\n\nlast";
        assert_eq!(through(input, 5).await, (input.to_vec(), 0));
        assert_eq!(through(input, 7).await, (input.to_vec(), 0));
    }

    #[tokio::test]
    async fn a_longer_line_is_cut_short_its_rest_swallowed_and_counted() {
        let ((out, discarded), last) = through_sized(b"ok\n0123456789\nnext\n0123456\n", 5).await;
        assert_eq!(out, b"ok\n01234\nnext\n01234\n");
        assert_eq!((discarded, last), (2, 7));
        let ((_, discarded), last) = through_sized(b"0123456789\n", 5).await;
        assert_eq!((discarded, last), (1, 10), "measured to its end");
        let ((out, discarded), _) = through_sized(b"0123456789", 5).await;
        assert_eq!(
            (out.as_slice(), discarded),
            (&b"01234\n"[..], 0),
            "not ended: not told"
        );
    }

    #[tokio::test]
    async fn a_wait_for_a_discard_ends_when_one_comes() {
        let oversized = Arc::new(Oversized::default());
        let seen = oversized.count();
        let waiting = tokio::spawn({
            let oversized = oversized.clone();
            async move { oversized.after(seen).await }
        });
        oversized.discarded_one(1);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("woken")
            .unwrap();
    }
}
