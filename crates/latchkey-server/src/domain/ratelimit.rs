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

/// Exponential back-off per key after repeated failures: the first `free` failures cost
/// nothing, then each further failure doubles the wait (1 s, 2 s, 4 s …) up to `max_wait_s`.
/// A success clears the key.
#[derive(Debug)]
pub struct Backoff {
    free: u32,
    max_wait_s: i64,
    inner: Mutex<HashMap<String, (u32, i64)>>,
}

impl Backoff {
    /// After `free` failures, waits double from 1 s up to `max_wait_s`.
    pub fn new(free: u32, max_wait_s: i64) -> Self {
        Self {
            free,
            max_wait_s,
            inner: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` while the key is backing off.
    pub fn check(&self, key: &str, now: i64) -> Result<(), i64> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((_, until)) if *until > now => Err(*until - now),
            _ => Ok(()),
        }
    }

    /// Records a failure.
    pub fn fail(&self, key: &str, now: i64) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, until)| *until > now - 86_400);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, 0));
        entry.0 += 1;
        if entry.0 > self.free {
            let exp = (entry.0 - self.free - 1).min(30);
            entry.1 = now + (1i64 << exp).min(self.max_wait_s);
        }
    }

    /// Forgets a key after a success.
    pub fn succeed(&self, key: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }
}

/// Limits on wrong user-code entries (RFC 8628 §5.1): per IP, per signed-in user, and for the
/// whole server. A guess is refused while any of the three is over its limit.
#[derive(Debug)]
pub struct GuessLimits {
    per_ip: RateLimiter,
    per_user: RateLimiter,
    global: RateLimiter,
}

impl GuessLimits {
    /// 10 per minute per IP, 20 per 10 minutes per user, `global` per 10 minutes in all.
    pub fn new(global: u32) -> Self {
        Self {
            per_ip: RateLimiter::new(10, 60),
            per_user: RateLimiter::new(20, 600),
            global: RateLimiter::new(global.max(1), 600),
        }
    }

    /// `Err(seconds to wait)` when any limit is reached.
    pub fn check(&self, ip: &str, user: &str, now: i64) -> Result<(), i64> {
        self.per_ip.check(ip, now)?;
        self.per_user.check(user, now)?;
        self.global.check("*", now)
    }

    /// Records a wrong entry.
    pub fn fail(&self, ip: &str, user: &str, now: i64) {
        let _ = self.per_ip.hit(ip, now);
        let _ = self.per_user.hit(user, now);
        let _ = self.global.hit("*", now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_free_failures() {
        let b = Backoff::new(3, 60);
        for _ in 0..3 {
            b.fail("a", 100);
        }
        assert!(b.check("a", 100).is_ok());
        b.fail("a", 100);
        assert_eq!(b.check("a", 100), Err(1));
        b.fail("a", 101);
        assert_eq!(b.check("a", 101), Err(2));
        for _ in 0..20 {
            b.fail("a", 200);
        }
        assert_eq!(b.check("a", 200), Err(60), "capped");
        b.succeed("a");
        assert!(b.check("a", 200).is_ok());
    }

    #[test]
    fn guesses_limited_by_ip_user_and_globally() {
        let g = GuessLimits::new(25);
        for i in 0..10 {
            g.fail("ip1", &format!("u{i}"), 0);
        }
        assert!(g.check("ip1", "fresh", 0).is_err(), "per IP");
        for i in 0..20 {
            g.fail(&format!("ip{i}x"), "u1", 0);
        }
        assert!(g.check("other-ip", "u1", 0).is_err(), "per user");
        assert!(
            g.check("other-ip", "u2", 0).is_err(),
            "global: 30 failures > 25"
        );
        assert!(g.check("other-ip", "u2", 600).is_ok(), "next window");
    }

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
