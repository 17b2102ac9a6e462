//! A small in-memory rate limiter (fixed windows per key), time passed in.
//!
//! Used for user-code entry (RFC 8628 §5.1) and password sign-in. Each replica limits what it
//! sees; the limits are set so that even several replicas together stay safe.

use std::collections::HashMap;
use std::sync::Mutex;

/// Counts events per key in fixed windows.
#[derive(Debug)]
pub struct RateLimiter {
    max: u32,
    window_s: i64,
    inner: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    /// At most `max` events per `window_s` seconds per key.
    pub fn new(max: u32, window_s: i64) -> Self {
        Self {
            max,
            window_s,
            inner: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event; `Err(retry_after_seconds)` when the key is over its limit.
    pub fn hit(&self, key: &str, now: i64) -> Result<(), i64> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let window = now - now.rem_euclid(self.window_s);
        if map.len() > 10_000 {
            map.retain(|_, (w, _)| *w == window);
        }
        let entry = map.entry(key.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.max {
            return Err(window + self.window_s - now);
        }
        entry.1 += 1;
        Ok(())
    }

    /// Whether the key is over its limit, without counting an event.
    pub fn check(&self, key: &str, now: i64) -> Result<(), i64> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let window = now - now.rem_euclid(self.window_s);
        match map.get(key) {
            Some((w, n)) if *w == window && *n >= self.max => Err(window + self.window_s - now),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let rl = RateLimiter::new(2, 60);
        assert!(rl.hit("ip", 0).is_ok());
        assert!(rl.hit("ip", 1).is_ok());
        assert_eq!(rl.hit("ip", 2), Err(58));
        assert_eq!(rl.check("ip", 3), Err(57));
        assert!(rl.hit("other", 2).is_ok());
        assert!(rl.hit("ip", 60).is_ok());
    }
}
