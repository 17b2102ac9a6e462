//! Time as a dependency: the server asks a [`Clock`] instead of the system, so tests can move
//! time forward (device code expiry, token expiry) without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// The real clock plus an offset that tests can advance; it can also be frozen, so that only
/// `advance` moves it (for tests whose outcome depends on how much time passes).
#[derive(Debug, Default, Clone)]
pub struct OffsetClock {
    offset_ms: Arc<AtomicI64>,
    frozen_ms: Arc<AtomicI64>,
}

impl OffsetClock {
    /// A clock that starts at real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Stops the clock at the current time: from now on only [`OffsetClock::advance`] moves it.
    pub fn freeze(&self) {
        self.frozen_ms.store(SystemClock.now_ms(), Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        let base = match self.frozen_ms.load(Ordering::SeqCst) {
            0 => SystemClock.now_ms(),
            frozen => frozen,
        };
        base + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// A shareable clock.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let c = OffsetClock::new();
        c.freeze();
        let t = c.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(c.now_ms(), t);
        c.advance(2);
        assert_eq!(c.now_ms(), t + 2000);
    }
}
