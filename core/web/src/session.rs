//! Admin sessions for browsers: signing in with the admin token once gives an `HttpOnly`,
//! `SameSite=Strict` cookie plus a CSRF token that the signing-in page keeps in its tab's
//! `sessionStorage`; a request is an admin's only with both.
//!
//! Why both: the cookie alone would let any page of another site that makes the browser send
//! it, or any script of this origin, act as the admin. The cookie cannot be read by scripts
//! and is never sent by other sites; the CSRF token is handed out once, in the sign-in answer.
//! Only the server's own (`ui:trusted`) pages can read the storage it is kept in: every other
//! plugin's pages run in an opaque origin (see `origins.rs`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use plexichat_backup::hex;

/// The cookie holding the session identifier.
pub(crate) const COOKIE: &str = "plexichat_admin";
/// The header carrying the session's CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// Where the cookie is sent: everywhere, since plugin routes that take `Admin` (the test
/// manager's) accept a session too. Sending it is harmless without the CSRF token, which only
/// the page that signed in holds.
const COOKIE_PATH: &str = "/";
/// A session unused for this long ends.
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after signing in, used or not.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Most sessions kept at once; signing in beyond that ends the least recently used one.
const CAPACITY: usize = 64;

/// What signing in hands to the browser.
pub(crate) struct Issued {
    /// The `Set-Cookie` header value.
    pub cookie: HeaderValue,
    /// The token the page sends back in [`CSRF_HEADER`].
    pub csrf: String,
}

struct Session {
    csrf: [u8; 32],
    created: Instant,
    last_used: Instant,
}

/// Why a request's session does not authorise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No session cookie: not signed in through a browser.
    NoCookie,
    /// The cookie names no live session (signed out, expired, or the server restarted).
    Expired,
    /// The session is live but the request lacks its CSRF token or has another.
    Csrf,
}

impl Refusal {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::NoCookie => "no admin session cookie",
            Refusal::Expired => {
                "the admin session has expired or was signed out; sign in again with the admin token"
            }
            Refusal::Csrf => {
                "the admin session cookie needs its CSRF token in the `X-CSRF-Token` header, as signing in returned it"
            }
        }
    }
}

/// The live sessions of one server, kept in memory: a restart signs everyone out.
#[derive(Default)]
pub(crate) struct Sessions {
    /// Keyed by the SHA-256 of the identifier, so a lookup's timing says nothing about
    /// the identifiers that exist.
    live: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Starts a session; the caller has checked the admin token.
    pub(crate) fn sign_in(&self) -> Issued {
        let id = random();
        let csrf = random();
        let now = Instant::now();
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        live.retain(|_, session| alive(session, now));
        if live.len() >= CAPACITY
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, session)| session.last_used)
                .map(|(key, _)| *key)
        {
            live.remove(&oldest);
        }
        live.insert(
            digest(&hex(&id)),
            Session {
                csrf,
                created: now,
                last_used: now,
            },
        );
        let cookie = format!(
            "{COOKIE}={}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={}",
            hex(&id),
            LIFETIME.as_secs()
        );
        Issued {
            cookie: HeaderValue::from_str(&cookie).expect("hex and ASCII only"),
            csrf: hex(&csrf),
        }
    }

    /// Whether `headers` carry a live session's cookie and that session's CSRF token; a
    /// success counts as use.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let id = cookie(headers).ok_or(Refusal::NoCookie)?;
        let now = Instant::now();
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let key = digest(id);
        let session = live.get_mut(&key).ok_or(Refusal::Expired)?;
        if !alive(session, now) {
            live.remove(&key);
            return Err(Refusal::Expired);
        }
        let presented = headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .ok_or(Refusal::Csrf)?;
        if !bool::from(hex(&session.csrf).as_bytes().ct_eq(presented)) {
            return Err(Refusal::Csrf);
        }
        session.last_used = now;
        Ok(())
    }

    /// Ends the session named by `headers`' cookie, if any.
    pub(crate) fn sign_out(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            let mut live = self
                .live
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            live.remove(&digest(id));
        }
    }

    /// The `Set-Cookie` value that makes the browser forget the cookie.
    pub(crate) fn expired_cookie() -> HeaderValue {
        HeaderValue::from_static("plexichat_admin=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_used) < IDLE && now.duration_since(session.created) < LIFETIME
}

/// The session cookie's value among the request's cookies.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
}

fn random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: Option<&str>, csrf: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(cookie) = cookie {
            headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        if let Some(csrf) = csrf {
            headers.insert(CSRF_HEADER, HeaderValue::from_str(csrf).unwrap());
        }
        headers
    }

    fn id_of(issued: &Issued) -> String {
        let cookie = issued.cookie.to_str().unwrap();
        let pair = cookie.split(';').next().unwrap();
        pair.to_string()
    }

    #[test]
    fn a_session_needs_its_cookie_and_its_csrf_token() {
        let sessions = Sessions::default();
        let issued = sessions.sign_in();
        let cookie = format!("theme=dark; {}", id_of(&issued));
        assert_eq!(
            sessions.check(&headers(Some(&cookie), Some(&issued.csrf))),
            Ok(())
        );
        assert_eq!(
            sessions.check(&headers(Some(&cookie), None)),
            Err(Refusal::Csrf)
        );
        let other = sessions.sign_in();
        assert_eq!(
            sessions.check(&headers(Some(&cookie), Some(&other.csrf))),
            Err(Refusal::Csrf),
            "one session's CSRF token does not open another"
        );
        assert_eq!(
            sessions.check(&headers(None, Some(&issued.csrf))),
            Err(Refusal::NoCookie)
        );
        assert_eq!(
            sessions.check(&headers(Some("plexichat_admin=00ff"), Some(&issued.csrf))),
            Err(Refusal::Expired)
        );
        sessions.sign_out(&headers(Some(&cookie), None));
        assert_eq!(
            sessions.check(&headers(Some(&cookie), Some(&issued.csrf))),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn the_cookie_is_invisible_to_scripts_and_other_sites() {
        let issued = Sessions::default().sign_in();
        let cookie = issued.cookie.to_str().unwrap();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/;"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        assert_eq!(issued.csrf.len(), 64);
        assert!(!cookie.contains(&issued.csrf));
    }

    #[test]
    fn past_capacity_the_least_recently_used_session_ends() {
        let sessions = Sessions::default();
        let issued: Vec<Issued> = (0..CAPACITY).map(|_| sessions.sign_in()).collect();
        let of = |issued: &Issued| headers(Some(&id_of(issued)), Some(&issued.csrf));
        // Using every session but the second makes the second the least recently used.
        std::thread::sleep(Duration::from_millis(2));
        for (index, session) in issued.iter().enumerate() {
            if index != 1 {
                assert_eq!(sessions.check(&of(session)), Ok(()));
            }
        }
        let newest = sessions.sign_in();
        assert_eq!(sessions.check(&of(&newest)), Ok(()));
        assert_eq!(sessions.check(&of(&issued[1])), Err(Refusal::Expired));
        for (index, session) in issued.iter().enumerate() {
            if index != 1 {
                assert_eq!(sessions.check(&of(session)), Ok(()), "session {index}");
            }
        }
    }
}
