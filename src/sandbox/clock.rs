//! The sandbox's notion of "now": real time plus an offset tests can move forward,
//! so expiry and the auth cache can be exercised without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// Milliseconds added to the wall clock.
    offset_ms: AtomicI64,
}

impl Clock {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let offset = Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed));
        let real = Utc::now();
        // Saturate instead of panicking on absurd offsets.
        real.checked_add_signed(offset).unwrap_or(real)
    }

    pub(crate) fn advance(&self, by: Duration) {
        let ms = by.num_milliseconds();
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                Some(cur.saturating_add(ms))
            });
    }

    pub(crate) fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}
