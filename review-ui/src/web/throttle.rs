//! Failed logins slow down per address. After [`FREE_FAILURES`] failures from one address, each
//! further attempt from it must wait twice as long as the last (1 s, 2 s, … up to [`MAX_WAIT`]);
//! until then it is turned away before any password check or audit event. With the store's
//! per-address lockout, this bounds how fast one address can guess and how much it can write to
//! the audit trail (a few hundred events a day), and it slows only that address: nobody can make
//! a physician wait by failing on purpose somewhere else.
//!
//! An attempt counts as a failure from the moment it starts and is given back if it succeeds, so
//! requests sent in parallel cannot all slip in before the first has failed.
//!
//! Kept in memory, like sessions: a restart forgets it, and it remembers at most [`TRACKED`]
//! addresses. Each address counts on its own (an IPv6 /64 is often a whole clinic LAN).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one address before it has to wait (a clinician mistyping is never slowed).
pub const FREE_FAILURES: u32 = 10;
/// The longest an address waits between attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(5 * 60);
/// An address with no failure for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Addresses remembered at once; past it, the one quiet longest is forgotten first.
pub const TRACKED: usize = 4096;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    by_source: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    wait_until: Instant,
}

impl LoginThrottle {
    /// Starts a login from `source`, counted as a failure until [`LoginThrottle::give_back`]; or,
    /// while the address must wait, how long.
    pub fn begin(&self, source: Option<&str>, now: Instant) -> Result<(), Duration> {
        let mut map = self.by_source.lock().unwrap_or_else(|p| p.into_inner());
        let key = source.unwrap_or_default();
        if let Some(f) = map.get(key)
            && f.wait_until > now
        {
            return Err(f.wait_until - now);
        }
        if !map.contains_key(key) && map.len() >= TRACKED {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if map.len() >= TRACKED
                && let Some(quietest) = map.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| k.clone())
            {
                map.remove(&quietest);
            }
        }
        let f = map.entry(key.to_string()).or_insert(Failures {
            count: 0,
            last: now,
            wait_until: now,
        });
        if now.duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        f.wait_until = now + wait_after(f.count);
        Ok(())
    }

    /// The login begun from `source` was no failed guess (it succeeded, or the store could not
    /// answer): it does not count, and the address need not wait.
    pub fn give_back(&self, source: Option<&str>, now: Instant) {
        let mut map = self.by_source.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = map.get_mut(source.unwrap_or_default()) {
            f.count = f.count.saturating_sub(1);
            f.wait_until = now;
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.by_source.lock().unwrap().len()
    }
}

/// How long an address waits after its `count`-th failure in a row.
fn wait_after(count: u32) -> Duration {
    match count.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(over) => Duration::from_secs(1u64 << over.min(16)).min(MAX_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_longer_after_each_failure_past_the_free_ones() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let (attacker, clinician) = (Some("10.0.0.66"), Some("10.0.0.5"));
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.begin(attacker, now), Ok(()));
        }
        assert_eq!(t.begin(attacker, now), Err(Duration::from_secs(1)));
        assert_eq!(t.begin(attacker, now + Duration::from_secs(1)), Ok(()));
        let later = now + Duration::from_secs(1);
        assert_eq!(t.begin(attacker, later), Err(Duration::from_secs(2)));
        assert_eq!(t.begin(clinician, now), Ok(()), "another address is not slowed");
        // Waiting its turn every time, an address ends up at the longest wait.
        let (mut at, mut attempts) = (later, 0);
        while attempts < 20 {
            match t.begin(attacker, at) {
                Ok(()) => attempts += 1,
                Err(wait) => at += wait,
            }
        }
        assert_eq!(t.begin(attacker, at), Err(MAX_WAIT));
        // An hour with no attempt, and the address starts afresh.
        let quiet = at + FORGET_AFTER;
        assert_eq!(t.begin(attacker, quiet), Ok(()));
        assert_eq!(t.begin(attacker, quiet), Ok(()));
    }

    /// Attempts sent at once are counted as they start, not when they fail.
    #[test]
    fn parallel_attempts_cannot_slip_past_the_count() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let admitted = (0..100).filter(|_| t.begin(Some("10.0.0.66"), now).is_ok()).count();
        assert_eq!(admitted as u32, FREE_FAILURES);
    }

    #[test]
    fn a_success_is_given_back() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let clinician = Some("10.0.0.5");
        for _ in 0..100 {
            t.begin(clinician, now).unwrap();
            t.give_back(clinician, now);
        }
        assert_eq!(t.begin(clinician, now), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_however_many_addresses_fail() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..(TRACKED as u32 + 500) {
            let address = std::net::Ipv4Addr::from(i).to_string();
            t.begin(Some(&address), now + Duration::from_millis(i.into())).unwrap();
        }
        assert_eq!(t.tracked(), TRACKED);
    }
}
