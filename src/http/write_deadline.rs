//! A deadline on writing answers, so that a client that stops reading them
//! cannot hold a connection slot.
//!
//! Such a client (one that pipelines requests and never reads) fills its
//! receive window and then the server's send buffer: hyper's writes stay
//! pending, hyper reads no further request while it cannot write, and no
//! head timeout runs, so nothing would ever close the connection.
//! [`WriteDeadline`] wraps the socket: once a write has been pending (not a
//! byte taken) for the limit, it fails, and hyper closes the connection. A
//! write that takes any byte starts the clock again: a slow reader, like a
//! slow sender, keeps its connection for as long as it moves bytes.
//!
//! What the server holds for such a client stays small: hyper buffers at
//! most `max_buf_size` (8 KiB) of requests it has not answered, and flushes
//! each answer before it reads the next request.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A stream whose writes fail once they have taken no byte for `limit`.
pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// The timer of a stalled write; made at the first stall only, as a
    /// client that reads its answers never needs one.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` runs for the current stall.
    stalled: bool,
}

impl<S> WriteDeadline<S> {
    /// `inner`, whose writes may take no byte for at most `limit`.
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            stalled: false,
        }
    }

    /// What a write (or flush) returned: a pending one starts (or keeps)
    /// the clock, which fails it once `limit` has passed. Only a write that
    /// is done stops the clock: a flush that is done has moved no byte.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
        moves_bytes: bool,
    ) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            if moves_bytes {
                self.stalled = false;
            }
            return outcome;
        }
        let deadline = Instant::now() + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.stalled {
            timer.as_mut().reset(deadline);
            self.stalled = true;
        }
        // Registers this task's waker, so the deadline is seen even if the
        // socket never becomes writable again.
        ready!(timer.as_mut().poll(cx));
        self.stalled = false;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took no byte of its answers in time",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, written, true)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, written, true)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, flushed, false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shut = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, shut, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_limit() {
        let (server, _client) = tokio::io::duplex(64);
        let mut server = WriteDeadline::new(server, Duration::from_millis(50));
        let answer = [0u8; 1024];
        let failed = tokio::time::timeout(Duration::from_secs(10), server.write_all(&answer))
            .await
            .expect("the write gave up");
        let error = failed.expect_err("nobody read");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_write_that_keeps_moving_bytes_is_not_cut_off() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut server = WriteDeadline::new(server, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut taken = Vec::new();
            let mut chunk = [0u8; 64];
            loop {
                // A slow reader: each wait is well under the limit, all of
                // them together well over it.
                tokio::time::sleep(Duration::from_millis(20)).await;
                match client.read(&mut chunk).await {
                    Ok(0) | Err(_) => return taken.len(),
                    Ok(n) => taken.extend_from_slice(&chunk[..n]),
                }
            }
        });
        server.write_all(&[7u8; 2048]).await.expect("written");
        server.shutdown().await.expect("shut down");
        drop(server);
        assert_eq!(reader.await.expect("reader"), 2048);
    }
}
