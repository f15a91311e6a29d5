//! The one place that reads the wall clock, so tests can set the time, and that waits for an
//! instant of it.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;

/// A wait for an instant; see [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once this clock reads `at` or later. The default waits on tokio's timer for
    /// the time left, which suits clocks that follow tokio's (paused in tests).
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        Box::pin(tokio::time::sleep(time_left(self.now(), at)))
    }
}

fn time_left(now: DateTime<Utc>, at: DateTime<Utc>) -> std::time::Duration {
    (at - now).to_std().unwrap_or_default()
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// On Linux a timer on the wall clock itself (timerfd, `CLOCK_REALTIME`): the process wakes
    /// once, at `at`, and a deadline that passed while the machine was suspended fires on
    /// resume. tokio's timer would wake it a few times on the way (its wheel re-files far
    /// deadlines as they near) and, following the monotonic clock, late by every suspend.
    /// Elsewhere, or when no timer can be made, tokio's timer.
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        Box::pin(async move {
            #[cfg(target_os = "linux")]
            match wall_timer::sleep_until(at).await {
                Ok(()) => return,
                Err(e) => tracing::debug!("no wall-clock timer ({e}); waiting on tokio's"),
            }
            tokio::time::sleep(time_left(Utc::now(), at)).await;
        })
    }
}

#[cfg(target_os = "linux")]
mod wall_timer {
    use chrono::{DateTime, Utc};
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// tokio's reactor takes raw descriptors.
    struct Timer(TimerFd);

    impl AsRawFd for Timer {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    pub async fn sleep_until(at: DateTime<Utc>) -> io::Result<()> {
        // An instant already past needs no timer (and a zero expiry would disarm one).
        if at <= Utc::now() {
            return Ok(());
        }
        let timer = TimerFd::new(
            ClockId::CLOCK_REALTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let expiry = TimeSpec::new(at.timestamp() as _, at.timestamp_subsec_nanos() as _);
        timer.set(Expiration::OneShot(expiry), TimerSetTimeFlags::TFD_TIMER_ABSTIME)?;
        // SAFETY: the descriptor is the `TimerFd`'s, owned by the `AsyncFd` through `Timer`, so
        // it stays open and the same for as long as the registration lives.
        let timer = unsafe { AsyncFd::register_with_interest(Timer(timer), Interest::READABLE) }?;
        loop {
            let mut ready = timer.readable().await?;
            match ready.try_io(|timer| timer.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(expired) => return expired,
                Err(_would_block) => continue,
            }
        }
    }
}

/// A clock that stands still at a chosen instant until it is moved.
#[derive(Debug)]
pub struct FixedClock(std::sync::Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(std::sync::Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The wall clock as tokio's timer sees it: the start instant's wall time plus tokio's elapsed
/// time. With tokio's clock paused (tests), "now" moves exactly as the paused clock does, so
/// the reminder scheduler can be tested at virtual instants days apart.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::starting_at(Utc::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start);
        self.wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Generous: a broken timer fails the test instead of hanging it.
    const PATIENCE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn the_wall_clock_wakes_at_the_instant_and_not_before() {
        let at = Utc::now() + chrono::Duration::milliseconds(150);
        tokio::time::timeout(PATIENCE, SystemClock.sleep_until(at))
            .await
            .expect("the timer fires");
        assert!(Utc::now() >= at, "woke before {at}");
    }

    #[tokio::test]
    async fn an_instant_already_past_resolves_at_once() {
        let at = Utc::now() - chrono::Duration::hours(1);
        tokio::time::timeout(PATIENCE, SystemClock.sleep_until(at))
            .await
            .expect("nothing to wait for");
    }

    #[tokio::test]
    async fn a_far_instant_keeps_waiting() {
        let at = Utc::now() + chrono::Duration::hours(1);
        let waited = tokio::time::timeout(Duration::from_millis(200), SystemClock.sleep_until(at)).await;
        assert!(waited.is_err(), "a deadline an hour away fired at once");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn linux_waits_on_a_wall_clock_timer() {
        let at = Utc::now() + chrono::Duration::milliseconds(50);
        let waited = tokio::time::timeout(PATIENCE, wall_timer::sleep_until(at))
            .await
            .expect("the timer fires");
        waited.expect("a timerfd on CLOCK_REALTIME");
        assert!(Utc::now() >= at);
    }

    #[tokio::test(start_paused = true)]
    async fn clocks_that_follow_tokio_wait_on_its_timer() {
        let clock = TokioClock::default();
        let at = clock.now() + chrono::Duration::days(7);
        // With time paused, tokio jumps straight to the deadline.
        clock.sleep_until(at).await;
        assert!(clock.now() >= at);
    }
}
