//! Failed admin authentication, per client address: after a few wrong tokens an address
//! waits, longer after each further one, before its next attempt is even compared, so
//! guessing the token costs time instead of being free.
//!
//! The table is bounded: when it is full, the address whose last failure is oldest is
//! forgotten, so a newcomer is never refused for what others guessed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Wrong attempts an address may make before it has to wait.
const FREE_FAILURES: u32 = 5;
/// The first wait; each further failure doubles it, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(300);
/// An address with no failure for this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Addresses tracked at once.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct Backoff {
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt is compared before this.
    until: Option<Instant>,
}

impl Backoff {
    /// How long `client` must still wait before an attempt of its is compared; `None` when
    /// it may try now.
    pub(crate) fn wait(&self, client: IpAddr) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let until = clients.get(&client)?.until?;
        let remaining = until.checked_duration_since(Instant::now())?;
        (!remaining.is_zero()).then_some(remaining)
    }

    /// Records a wrong attempt of `client`: after [`FREE_FAILURES`], it waits.
    pub(crate) fn failed(&self, client: IpAddr) {
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let oldest = clients
                .iter()
                .min_by_key(|(_, failures)| failures.last)
                .map(|(address, _)| *address);
            if let Some(oldest) = oldest {
                clients.remove(&oldest);
            }
        }
        let failures = clients.entry(client).or_insert(Failures {
            count: 0,
            last: now,
            until: None,
        });
        if now.duration_since(failures.last) > FORGET_AFTER {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = now;
        failures.until = (failures.count > FREE_FAILURES).then(|| {
            let doublings = (failures.count - FREE_FAILURES - 1).min(16);
            now + (FIRST_WAIT * 2u32.pow(doublings)).min(MAX_WAIT)
        });
    }

    /// A right attempt of `client` clears its record.
    pub(crate) fn succeeded(&self, client: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.remove(&client);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_double_after_the_free_failures_and_a_success_clears_them() {
        let backoff = Backoff::default();
        let guesser: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..FREE_FAILURES {
            backoff.failed(guesser);
            assert_eq!(backoff.wait(guesser), None);
        }
        backoff.failed(guesser);
        assert_eq!(backoff.wait(guesser), Some(Duration::from_secs(1)));
        backoff.failed(guesser);
        assert_eq!(backoff.wait(guesser), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(backoff.wait(guesser), None);
        for _ in 0..30 {
            backoff.failed(guesser);
        }
        assert_eq!(backoff.wait(guesser), Some(MAX_WAIT));
        // Another address is not affected.
        assert_eq!(backoff.wait([192, 0, 2, 2].into()), None);
        backoff.succeeded(guesser);
        assert_eq!(backoff.wait(guesser), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_forgets_the_oldest_address_not_the_newcomer() {
        let backoff = Backoff::default();
        for n in 0..MAX_CLIENTS as u32 {
            backoff.failed(IpAddr::from(n.to_be_bytes()));
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        let newcomer: IpAddr = [203, 0, 113, 7].into();
        backoff.failed(newcomer);
        assert_eq!(backoff.tracked(), MAX_CLIENTS);
        assert_eq!(backoff.wait(newcomer), None);
        let clients = backoff.clients.lock().unwrap();
        assert!(!clients.contains_key(&IpAddr::from(0u32.to_be_bytes())));
        assert!(clients.contains_key(&newcomer));
    }
}
