//! How often one key (a person, a hook, an address) may do something: a burst, then a steady
//! rate (GCRA: one instant per key, when its allowance is next full). Kept in this process's
//! memory, so with several servers each applies it to what it serves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Keys remembered before those whose allowance is full again are forgotten.
const FORGET_PAST: usize = 10_000;

/// Each key's theoretical arrival time.
#[derive(Debug)]
pub struct RateLimiter<K> {
    next: Mutex<HashMap<K, Instant>>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        RateLimiter {
            next: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// Takes one of `key`'s allowance (one per `interval` on average, `burst` at once); how
    /// long to wait when there is none left.
    pub fn take(&self, key: K, interval: Duration, burst: u32) -> Result<(), Duration> {
        self.take_at(key, interval, burst, Instant::now())
    }

    fn take_at(
        &self,
        key: K,
        interval: Duration,
        burst: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let tolerance = interval * burst.max(1).saturating_sub(1);
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if next.len() > FORGET_PAST {
            next.retain(|_, at| *at > now);
        }
        let at = next.get(&key).copied().map_or(now, |at| at.max(now));
        let early = at.saturating_duration_since(now);
        if early > tolerance {
            return Err(early - tolerance);
        }
        next.insert(key, at + interval);
        Ok(())
    }
}

/// A wait as whole seconds for `Retry-After`: rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u32 {
    u32::try_from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        .unwrap_or(u32::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_and_others_are_not_held_back() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let interval = Duration::from_millis(500);
        for _ in 0..3 {
            assert!(limiter.take_at(1, interval, 3, start).is_ok());
        }
        let wait = limiter.take_at(1, interval, 3, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(
            limiter.take_at(2, interval, 3, start).is_ok(),
            "someone else"
        );
        assert!(
            limiter.take_at(1, interval, 3, start + wait).is_ok(),
            "after the wait"
        );
        assert!(limiter.take_at(1, interval, 3, start + wait).is_err());
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(2001)), 3);
    }
}
