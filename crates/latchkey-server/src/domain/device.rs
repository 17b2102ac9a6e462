//! Device authorization rules (RFC 8628): user-code generation, the state of a device request,
//! and polling discipline (`slow_down`) kept in memory so that a poll never writes to the
//! database.

use latchkey_proto::UserCode;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use super::secrets::random_bytes;

/// Prefix of device codes (the secret half the CLI polls with).
pub const DEVICE_CODE_PREFIX: &str = "lkd_";

/// Generates a user code of `len` characters, each uniform over the alphabet (rejection
/// sampling, no modulo bias).
pub fn generate_user_code(len: usize) -> UserCode {
    let mut idx = Vec::with_capacity(len);
    while idx.len() < len {
        for b in random_bytes::<16>() {
            // 240 = 12 * 20: values at or above it would bias the result.
            if b < 240 && idx.len() < len {
                idx.push(b % 20);
            }
        }
    }
    UserCode::from_indexes(&idx)
}

/// log2 of the bound on the chance that any wrong-code guess matches a live code during one
/// code lifetime: `2 · G · P / 20^len` (docs/security.md), for `G` wrong entries allowed per
/// 10 minutes server-wide and `P` pending codes at most.
pub fn guess_bound_log2(len: usize, global_failures: u32, max_pending: u32) -> f64 {
    let n_log2 = len as f64 * 20f64.log2();
    (2.0 * f64::from(global_failures) * f64::from(max_pending)).log2() - n_log2
}

/// Where a device request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// The user approved; the next poll gets tokens.
    Approved,
    /// The user denied.
    Denied,
    /// Tokens were issued; the device code is spent.
    Consumed,
}

impl DeviceStatus {
    /// Storage form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
        }
    }

    /// From storage.
    pub fn parse(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "consumed" => Self::Consumed,
            _ => Self::Pending,
        }
    }
}

/// What the token endpoint answers to a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// `authorization_pending`.
    Pending,
    /// `slow_down`.
    SlowDown,
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// `invalid_grant`: the code was already used.
    AlreadyUsed,
    /// Issue tokens.
    Issue,
}

/// Decides the answer to a poll from the stored state and the poll timing.
pub fn poll_outcome(
    status: DeviceStatus,
    expires_at: i64,
    now: i64,
    too_fast: bool,
) -> PollOutcome {
    if status == DeviceStatus::Consumed {
        return PollOutcome::AlreadyUsed;
    }
    if now >= expires_at {
        return PollOutcome::Expired;
    }
    if too_fast {
        return PollOutcome::SlowDown;
    }
    match status {
        DeviceStatus::Pending => PollOutcome::Pending,
        DeviceStatus::Approved => PollOutcome::Issue,
        DeviceStatus::Denied => PollOutcome::Denied,
        DeviceStatus::Consumed => PollOutcome::AlreadyUsed,
    }
}

/// Per-device-code polling state, in memory only (RFC 8628 §3.5).
///
/// Each replica tracks the polls it sees; a client polling too fast against one replica is
/// slowed down there. Entries are dropped when their code expires.
#[derive(Debug, Default)]
pub struct PollTracker {
    inner: Mutex<HashMap<String, PollState>>,
    /// When expired entries were last dropped: at most once a second, since a sweep walks
    /// every tracked code (10,000 pending sign-ins polled each second would otherwise cost
    /// 10,000 walks of 10,000 entries a second).
    swept_ms: AtomicI64,
}

#[derive(Debug, Clone, Copy)]
struct PollState {
    last_ms: i64,
    interval_s: i64,
    expires_at: i64,
}

impl PollTracker {
    /// Records a poll of `code_hash` at `now_ms`; returns whether it came faster than the
    /// current interval (then the interval grows by 5 seconds, RFC 8628 §3.5).
    pub fn poll(
        &self,
        code_hash: &str,
        now_ms: i64,
        base_interval_s: i64,
        expires_at: i64,
    ) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 1024 && now_ms - self.swept_ms.load(Ordering::Relaxed) >= 1000 {
            self.swept_ms.store(now_ms, Ordering::Relaxed);
            let now_s = now_ms / 1000;
            map.retain(|_, s| s.expires_at > now_s);
        }
        match map.get_mut(code_hash) {
            None => {
                map.insert(
                    code_hash.to_owned(),
                    PollState {
                        last_ms: now_ms,
                        interval_s: base_interval_s,
                        expires_at,
                    },
                );
                false
            }
            Some(state) => {
                // Allow a little network jitter before calling a poll too fast.
                let too_fast = now_ms - state.last_ms < state.interval_s * 1000 - 500;
                if too_fast {
                    state.interval_s += 5;
                }
                state.last_ms = now_ms;
                too_fast
            }
        }
    }

    /// Forgets a code once it is spent.
    pub fn forget(&self, code_hash: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(code_hash);
    }

    /// Number of tracked device codes.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_valid_and_varied() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = generate_user_code(8);
            assert!(UserCode::parse(&c.to_string()).is_ok());
            seen.insert(c.canonical().to_owned());
        }
        assert!(seen.len() > 195);
    }

    #[test]
    fn longer_codes_and_the_guessing_bound() {
        let c = generate_user_code(16);
        assert_eq!(c.canonical().len(), 16);
        assert_eq!(c.to_string().len(), 19);
        // docs/security.md: the defaults with 8 characters give about 2^-11.1, with 16 about
        // 2^-45.6.
        assert!((guess_bound_log2(8, 600, 10_000) + 11.06).abs() < 0.05);
        assert!(guess_bound_log2(16, 600, 10_000) < -45.0);
        assert!(guess_bound_log2(12, 600, 10_000) > -32.0);
    }

    #[test]
    fn outcomes() {
        use DeviceStatus as S;
        use PollOutcome as O;
        assert_eq!(poll_outcome(S::Pending, 100, 50, false), O::Pending);
        assert_eq!(poll_outcome(S::Pending, 100, 50, true), O::SlowDown);
        assert_eq!(poll_outcome(S::Pending, 100, 100, false), O::Expired);
        assert_eq!(poll_outcome(S::Approved, 100, 50, false), O::Issue);
        assert_eq!(poll_outcome(S::Denied, 100, 50, false), O::Denied);
        assert_eq!(poll_outcome(S::Consumed, 100, 50, false), O::AlreadyUsed);
    }

    #[test]
    fn slow_down_grows_interval() {
        let t = PollTracker::default();
        assert!(!t.poll("a", 0, 5, 600));
        assert!(t.poll("a", 1000, 5, 600)); // 1 s after: too fast, interval now 10
        assert!(t.poll("a", 7000, 5, 600)); // 6 s after: too fast for 10, interval now 15
        assert!(!t.poll("a", 22_000, 5, 600)); // 15 s after: fine
        t.forget("a");
        assert!(t.is_empty());
    }
}
