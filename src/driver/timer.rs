//! Sleeping until a deadline closer than the OS tick, without spinning.
//!
//! `epoll_wait` counts its timeout in whole milliseconds, so a loop that
//! must wake for a deadline 200 µs away either oversleeps by most of a
//! millisecond or spins. With many sessions some deadline is nearly always
//! that close (an acknowledgement delay, a loss timer, a pacing release),
//! and a spinning loop never sleeps at all: with 1,000 sessions at 20 Hz
//! the loop used three quarters of a core, making 300,000 empty
//! `epoll_wait` and `recvmmsg` calls a second. On Linux a `timerfd` registered with the poll wakes the
//! loop with nanosecond precision instead; elsewhere the loop spins for
//! such deadlines as before.

use std::time::{Duration, Instant};

use mio::{Registry, Token};

/// A one-shot wake-up at a precise instant, registered with the loop's poll.
pub struct PreciseTimer {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    /// The deadline the timer is set for, so an unchanged one costs no call.
    armed_for: Option<Instant>,
}

impl PreciseTimer {
    /// A timer registered with `registry` as `token`; `None` where the OS
    /// offers none (the loop then spins for close deadlines).
    pub fn new(registry: &Registry, token: Token) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
            use std::os::fd::AsRawFd;
            // CLOCK_MONOTONIC: the clock `Instant` reads on Linux.
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .ok()?;
            registry
                .register(
                    &mut mio::unix::SourceFd(&fd.as_raw_fd()),
                    token,
                    mio::Interest::READABLE,
                )
                .ok()?;
            Some(Self { fd, armed_for: None })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (registry, token);
            None
        }
    }

    /// Makes the poll return at `deadline` at the latest (a wake-up set for
    /// an earlier deadline may still come first: a spurious turn, no more).
    /// False if the OS refused, and the caller must not rely on it.
    pub fn arm(&mut self, now: Instant, deadline: Instant) -> bool {
        if self.armed_for == Some(deadline) {
            return true;
        }
        // A zero value would disarm the timer: a deadline already here
        // fires after a nanosecond.
        let wait = deadline
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
        let ok = self.set(wait);
        self.armed_for = ok.then_some(deadline);
        ok
    }

    #[cfg(target_os = "linux")]
    fn set(&self, wait: Duration) -> bool {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = Timespec {
            tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: value,
        };
        // Setting the timer also clears expirations not read: the poll is
        // edge-triggered and each new expiry raises a new event, so the
        // count is never read.
        timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec).is_ok()
    }

    #[cfg(not(target_os = "linux"))]
    fn set(&self, _wait: Duration) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    const TOKEN: Token = Token(7);

    /// Polls once with a backstop far beyond the deadline: true if the
    /// timer's event came (the backstop only bounds a broken timer).
    fn fired(poll: &mut Poll) -> bool {
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        events.iter().any(|e| e.token() == TOKEN)
    }

    #[test]
    fn an_armed_timer_wakes_the_poll_and_can_be_armed_again() {
        let mut poll = Poll::new().unwrap();
        let mut timer = PreciseTimer::new(poll.registry(), TOKEN).expect("timerfd");
        let now = Instant::now();
        assert!(timer.arm(now, now + Duration::from_micros(200)));
        assert!(fired(&mut poll));
        // Never read: a new expiry still raises a new edge.
        let now = Instant::now();
        assert!(timer.arm(now, now + Duration::from_micros(100)));
        assert!(fired(&mut poll));
    }

    #[test]
    fn a_deadline_already_past_still_fires() {
        let mut poll = Poll::new().unwrap();
        let mut timer = PreciseTimer::new(poll.registry(), TOKEN).expect("timerfd");
        let now = Instant::now();
        assert!(timer.arm(now, now - Duration::from_millis(1)));
        assert!(fired(&mut poll));
    }

    #[test]
    fn the_timer_remembers_the_deadline_it_is_set_for() {
        let poll = Poll::new().unwrap();
        let mut timer = PreciseTimer::new(poll.registry(), TOKEN).expect("timerfd");
        let now = Instant::now();
        let deadline = now + Duration::from_secs(60);
        assert!(timer.arm(now, deadline));
        assert_eq!(timer.armed_for, Some(deadline));
        let other = deadline + Duration::from_secs(1);
        assert!(timer.arm(now, other));
        assert_eq!(timer.armed_for, Some(other));
    }
}
