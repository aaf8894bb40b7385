//! A problem+json body for the answers hyper makes by itself.
//!
//! When a request cannot be parsed (a request line and headers over
//! [`MAX_HEAD_BYTES`](super::serve::MAX_HEAD_BYTES), a target too long, a
//! malformed request line or header) hyper never calls the service: it
//! writes `400`, `414` or `431` with `content-length: 0` and closes the
//! connection, and offers no hook to change that answer. [`ProblemBodies`]
//! wraps the connection's socket and, when hyper writes such a head, writes
//! the same head with the [`ApiError`]'s problem+json body instead.
//!
//! Telling them apart from PEZ's own answers is safe: every 4xx of PEZ's
//! service carries a problem body, so its `content-length` is never 0
//! (answers to HEAD keep the length of the body they leave out); and hyper
//! flushes each answer before it reads the next request, so its own answer
//! starts a write.

use super::problem::ApiError;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose hyper-made error answers get a problem+json body.
pub struct ProblemBodies<S> {
    inner: S,
    /// The most the request line and headers may take (for the 431's body).
    max_head_bytes: usize,
    /// A replacement answer not yet written whole.
    pending: Vec<u8>,
}

impl<S> ProblemBodies<S> {
    /// Wraps `inner`, whose requests' heads may take `max_head_bytes`.
    pub fn new(inner: S, max_head_bytes: usize) -> Self {
        Self {
            inner,
            max_head_bytes,
            pending: Vec::new(),
        }
    }
}

/// The answer to write instead of `written`, if `written` is a whole answer
/// of hyper's own (a head with `content-length: 0` and a status hyper
/// answers parse errors with); `max_head_bytes` is for the 431's body.
pub fn replacement(written: &[u8], max_head_bytes: usize) -> Option<Vec<u8>> {
    let error = match written.get(..13)? {
        b"HTTP/1.1 400 " => ApiError::Malformed,
        b"HTTP/1.1 414 " => ApiError::UriTooLong,
        b"HTTP/1.1 431 " => ApiError::HeadTooLarge {
            limit: max_head_bytes,
        },
        _ => return None,
    };
    let head = std::str::from_utf8(written)
        .ok()?
        .strip_suffix("\r\n\r\n")?;
    let mut lines: Vec<&str> = head.split("\r\n").collect();
    let empty = lines
        .iter()
        .position(|line| line.eq_ignore_ascii_case("content-length: 0"))?;
    let body = error.into_response(None).into_body();
    let length = format!("content-length: {}", body.len());
    lines[empty] = &length;
    lines.insert(empty, "content-type: application/problem+json");
    let mut answer = lines.join("\r\n").into_bytes();
    answer.extend_from_slice(b"\r\n\r\n");
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<S: AsyncWrite + Unpin> ProblemBodies<S> {
    /// Writes what is pending; ready once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemBodies<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemBodies<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if let Some(answer) = replacement(buf, this.max_head_bytes) {
            // Taken whole: hyper sees its answer written.
            this.pending = answer;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        // hyper's own answer is a head alone: one slice, any others empty.
        if let Some((first, rest)) = bufs.split_first()
            && rest.iter().all(|b| b.is_empty())
            && let Some(answer) = replacement(first, this.max_head_bytes)
        {
            this.pending = answer;
            return Poll::Ready(Ok(first.len()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_431_gets_a_problem_body_and_keeps_its_other_headers() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                      content-length: 0\r\ndate: Sun, 06 Dec 2026 02:20:30 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper, 8192).expect("replaced")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Sun, 06 Dec 2026"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/problem+json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 431);
    }

    #[test]
    fn pezs_own_answers_are_left_alone() {
        for written in [
            // A problem body of PEZ's own.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\n\r\n"[..],
            // Its answer to HEAD: the length of the body left out.
            b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 99\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1",
            // Not a whole head.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(
                replacement(written, 8192),
                None,
                "{}",
                String::from_utf8_lossy(written)
            );
        }
    }
}
