//! How fast one person may post: a burst, then a steady rate (GCRA: one instant per person,
//! the time their allowance is next full). Kept in this process's memory, so with several
//! servers each applies it to the posts it serves.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// People remembered before those whose allowance is full again are forgotten.
const FORGET_PAST: usize = 10_000;

/// Each person's theoretical arrival time.
#[derive(Debug, Default)]
pub(crate) struct SendLimiter {
    next: Mutex<HashMap<i64, Instant>>,
}

impl SendLimiter {
    /// Takes one post of `user_id`'s allowance (`per_second` on average, `burst` at once);
    /// how long to wait when there is none left.
    pub(crate) fn take(&self, user_id: i64, per_second: u32, burst: u32) -> Result<(), Duration> {
        self.take_at(user_id, per_second, burst, Instant::now())
    }

    fn take_at(
        &self,
        user_id: i64,
        per_second: u32,
        burst: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let interval = Duration::from_secs(1) / per_second.max(1);
        let tolerance = interval * burst.max(1).saturating_sub(1);
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if next.len() > FORGET_PAST {
            next.retain(|_, at| *at > now);
        }
        let at = next.get(&user_id).copied().map_or(now, |at| at.max(now));
        let early = at.saturating_duration_since(now);
        if early > tolerance {
            return Err(early - tolerance);
        }
        next.insert(user_id, at + interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_and_others_are_not_held_back() {
        let limiter = SendLimiter::default();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at(1, 2, 3, start).is_ok());
        }
        let wait = limiter.take_at(1, 2, 3, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.take_at(2, 2, 3, start).is_ok(), "someone else");
        assert!(
            limiter.take_at(1, 2, 3, start + wait).is_ok(),
            "after the wait"
        );
        assert!(limiter.take_at(1, 2, 3, start + wait).is_err());
    }
}
