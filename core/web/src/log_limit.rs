//! Rate-limited logging: a hostile client must not be able to fill the disk with the
//! warnings it provokes (failed admin logins, a full connection table), yet none may go
//! unlogged; what is held back is counted and reported with the next line that is allowed.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Allows one log line per period; counts the others.
#[derive(Debug)]
pub(crate) struct LogLimit {
    period: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    pub(crate) fn new(period: Duration) -> LogLimit {
        LogLimit {
            period,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be logged now.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if state
            .last
            .is_some_and(|last| now.duration_since(last) < self.period)
        {
            state.suppressed += 1;
            return None;
        }
        state.last = Some(now);
        Some(std::mem::take(&mut state.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_period_and_a_count_of_the_rest() {
        let limit = LogLimit::new(Duration::from_secs(10));
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(limit.allow());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        seen.push(limit.allow());
        seen.push(limit.allow());
        assert_eq!(seen, [Some(0), None, None, None, None, Some(4), None]);
    }
}
