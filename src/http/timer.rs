//! hyper's header read timeout without a timer per request.
//!
//! hyper 1 bounds the wait for a request head with `header_read_timeout`,
//! asking its [`Timer`] for a fresh sleep at every request: on a kept-alive
//! connection that is a tokio timer registered and cancelled per request
//! (a lock on the timer wheel, and often a wake-up of the thread parked on
//! it). Here each connection has one [`HeadTimer`]: hyper's sleeps only
//! write their deadline into it, and the connection's task ([`Guarded`])
//! keeps one tokio timer that it moves only when that timer goes off, so a
//! busy connection touches tokio's timer once per timeout period, not once
//! per request.
//!
//! hyper (since 1.6) also starts that sleep while it waits for the next
//! request of a kept-alive connection, so the same deadline bounds idle
//! connections. The first head of a connection gets `PEZ_HEADER_TIMEOUT_MS`;
//! every later one (the idle wait included) `PEZ_IDLE_TIMEOUT_MS`, as a load
//! balancer that keeps connections open expects.

use hyper::rt::{Sleep, Timer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// No deadline (hyper is reading a request or writing its answer).
const NONE: u64 = 0;

/// The deadline of a connection's current head, shared by hyper's sleeps
/// and the connection's task. Times are nanoseconds since `origin`, plus
/// one so that 0 means none.
#[derive(Debug)]
struct Deadline {
    origin: Instant,
    /// When the head hyper waits for must be in.
    at: AtomicU64,
    /// The deadline that has passed, once it has: hyper's sleep for it is
    /// then ready.
    passed: AtomicU64,
    /// How many heads hyper has waited for.
    heads: AtomicU64,
}

impl Deadline {
    fn encode(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
    }

    fn decode(&self, at: u64) -> Instant {
        self.origin + Duration::from_nanos(at - 1)
    }
}

/// hyper's [`Timer`] for one connection.
#[derive(Debug, Clone)]
pub struct HeadTimer {
    deadline: Arc<Deadline>,
    /// Added to hyper's deadline for every head after the first (hyper
    /// computes it with the header timeout).
    later_heads: LaterHeads,
}

#[derive(Debug, Clone, Copy)]
enum LaterHeads {
    Longer(Duration),
    Shorter(Duration),
}

impl HeadTimer {
    /// A timer for one connection whose first head gets `header_timeout`
    /// (hyper's `header_read_timeout`) and every later one `idle_timeout`.
    pub fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        let later_heads = if idle_timeout >= header_timeout {
            LaterHeads::Longer(idle_timeout - header_timeout)
        } else {
            LaterHeads::Shorter(header_timeout - idle_timeout)
        };
        Self {
            deadline: Arc::new(Deadline {
                origin: Instant::now(),
                at: AtomicU64::new(NONE),
                passed: AtomicU64::new(NONE),
                heads: AtomicU64::new(0),
            }),
            later_heads,
        }
    }

    /// What the connection's task needs to enforce the deadlines.
    pub fn enforcer(&self) -> Enforcer {
        Enforcer {
            deadline: Arc::clone(&self.deadline),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed_for: NONE,
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let state = &self.deadline;
        let deadline = if state.heads.fetch_add(1, Ordering::Relaxed) == 0 {
            deadline
        } else {
            match self.later_heads {
                LaterHeads::Longer(more) => deadline + more,
                LaterHeads::Shorter(less) => deadline.checked_sub(less).unwrap_or(deadline),
            }
        };
        let at = state.encode(deadline);
        state.at.store(at, Ordering::Release);
        Box::pin(HeadSleep {
            deadline: Arc::clone(state),
            at,
        })
    }
}

/// One of hyper's sleeps: ready once the connection's task has seen its
/// deadline pass. It registers no waker: hyper polls it from the
/// connection's own task, which the [`Enforcer`]'s timer wakes.
struct HeadSleep {
    deadline: Arc<Deadline>,
    at: u64,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.deadline.passed.load(Ordering::Acquire) == self.at {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        // The head is in (or the connection is gone): no deadline, unless a
        // newer sleep has set its own already.
        let _ =
            self.deadline
                .at
                .compare_exchange(self.at, NONE, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// The connection task's side: one tokio timer, moved only when it goes
/// off (or when a deadline comes before it).
pub struct Enforcer {
    deadline: Arc<Deadline>,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The deadline `timer` is set for (and registered with this task's
    /// waker), or NONE.
    armed_for: u64,
}

impl Enforcer {
    /// Called after each poll of the connection: an atomic load, and a
    /// look at the timer when it is set. Returns true when a deadline has
    /// passed: poll the connection again, so hyper's sleep sees it.
    pub fn check(&mut self, cx: &mut Context<'_>) -> bool {
        let at = self.deadline.at.load(Ordering::Acquire);
        if at == NONE {
            // Nothing to enforce; a timer that is set goes off harmlessly.
            return false;
        }
        if self.armed_for != NONE && at >= self.armed_for && !self.timer.is_elapsed() {
            return false;
        }
        // The timer is not set, went off, or is set too late: hyper may have
        // moved the deadline since.
        let deadline = self.deadline.decode(at);
        if deadline <= Instant::now() {
            self.armed_for = NONE;
            self.deadline.passed.store(at, Ordering::Release);
            return true;
        }
        self.timer.as_mut().reset(deadline.into());
        self.armed_for = at;
        // Registers this task's waker with the timer.
        if self.timer.as_mut().poll(cx).is_ready() {
            self.armed_for = NONE;
            self.deadline.passed.store(at, Ordering::Release);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline_of(timer: &HeadTimer) -> Instant {
        timer
            .deadline
            .decode(timer.deadline.at.load(Ordering::Acquire))
    }

    #[test]
    fn the_first_head_gets_the_header_timeout_and_later_ones_the_idle_timeout() {
        let timer = HeadTimer::new(Duration::from_secs(5), Duration::from_secs(60));
        let now = Instant::now();
        let first = timer.sleep_until(now + Duration::from_secs(5));
        assert_eq!(deadline_of(&timer), now + Duration::from_secs(5));
        drop(first);
        assert_eq!(timer.deadline.at.load(Ordering::Acquire), NONE);
        let _second = timer.sleep_until(now + Duration::from_secs(5));
        assert_eq!(deadline_of(&timer), now + Duration::from_secs(60));

        let short_idle = HeadTimer::new(Duration::from_secs(5), Duration::from_millis(600));
        drop(short_idle.sleep_until(now + Duration::from_secs(5)));
        let _second = short_idle.sleep_until(now + Duration::from_secs(5));
        assert_eq!(deadline_of(&short_idle), now + Duration::from_millis(600));
    }

    #[test]
    fn a_sleep_is_ready_only_once_its_own_deadline_has_passed() {
        let timer = HeadTimer::new(Duration::from_secs(5), Duration::from_secs(60));
        let mut sleep = timer.sleep_until(Instant::now() + Duration::from_secs(5));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        let at = timer.deadline.at.load(Ordering::Acquire);
        timer.deadline.passed.store(at + 1, Ordering::Release);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        timer.deadline.passed.store(at, Ordering::Release);
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
    }
}
