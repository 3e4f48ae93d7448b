//! Attempt limits kept in the database (every replica counts the same attempts): failed
//! sign-ins per account name and per client address, registrations per address. A key over
//! its limit is answered 429 with `Retry-After` until its window ends, whoever asks, so the
//! answer says nothing about whether the account exists.

use std::net::IpAddr;

use plexichat::prelude::*;
use plexichat::sqlx::AnyPool;

use crate::store;

/// What is counted.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    text: String,
    limit: u32,
}

impl Key {
    /// Failed sign-ins to the account `username` (normalized; counted whether it exists).
    pub(crate) fn account(username: &str, limit: u32) -> Key {
        Key {
            text: format!("account:{username}"),
            limit,
        }
    }

    /// Failed sign-ins from `address`.
    pub(crate) fn address(address: Option<IpAddr>, limit: u32) -> Key {
        Key {
            text: format!("address:{}", address_key(address)),
            limit,
        }
    }

    /// Registrations from `address`.
    pub(crate) fn registrations(address: Option<IpAddr>, limit: u32) -> Key {
        Key {
            text: format!("register:{}", address_key(address)),
            limit,
        }
    }
}

/// An IPv6 client is counted by its /64, which one subscriber usually holds whole.
fn address_key(address: Option<IpAddr>) -> String {
    match address {
        None => "local".to_string(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
    }
}

/// The limits' window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub ms: i64,
}

impl Window {
    fn since(self, now: i64) -> i64 {
        now - self.ms
    }
}

/// 429 if any of `keys` is over its limit now.
pub(crate) async fn check(pool: &AnyPool, keys: &[Key], window: Window) -> Result<(), ApiError> {
    let now = store::now_ms();
    for key in keys {
        if let Some((failures, started)) =
            store::failures(pool, &key.text, window.since(now)).await?
            && failures >= i64::from(key.limit)
        {
            let wait_ms = (started + window.ms - now).max(1000);
            let seconds = u32::try_from((wait_ms + 999) / 1000).unwrap_or(u32::MAX);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many attempts; try again in {seconds} s"),
            )
            .with_code("rate_limited")
            .with_retry_after(seconds));
        }
    }
    Ok(())
}

/// Counts an attempt against each of `keys`.
pub(crate) async fn count(pool: &AnyPool, keys: &[Key], window: Window) -> Result<(), ApiError> {
    let now = store::now_ms();
    for key in keys {
        store::record_failure(pool, &key.text, now, window.since(now)).await?;
    }
    Ok(())
}

/// Forgets the attempts against `key`.
pub(crate) async fn clear(pool: &AnyPool, key: &Key) -> Result<(), ApiError> {
    store::clear_failures(pool, &key.text).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(Some(one)), address_key(Some(other)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "192.0.2.7");
    }
}
