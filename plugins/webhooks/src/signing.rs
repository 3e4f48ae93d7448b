//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): secrets are `whsec_`
//! and base64 of 24 random bytes; a message is signed as
//! `v1,<base64 of HMAC-SHA256(secret bytes, "<webhook-id>.<webhook-timestamp>.<body>")>`,
//! several signatures separated by spaces while a rotated secret's overlap lasts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use data_encoding::HEXLOWER;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The prefix of a signing secret.
const PREFIX: &str = "whsec_";

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is a broken system; nothing secure can be issued then.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

/// A new signing secret.
pub(crate) fn new_secret() -> String {
    format!("{PREFIX}{}", STANDARD.encode(random_bytes::<24>()))
}

/// A bearer token for an incoming hook: `pxh_` and 256 random bits, URL-safe.
pub(crate) fn hook_token() -> String {
    format!(
        "pxh_{}",
        data_encoding::BASE64URL_NOPAD.encode(&random_bytes::<32>())
    )
}

/// What the database keeps of a token: its SHA-256, in hex.
pub(crate) fn digest(token: &str) -> String {
    HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// The `webhook-signature` header for `body` sent as message `id` at `timestamp` (Unix
/// seconds), with each of `secrets` (the current one first).
pub(crate) fn signature(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = STANDARD
                .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
                .ok()?;
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            Some(format!(
                "v1,{}",
                STANDARD.encode(mac.finalize().into_bytes())
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_specifications_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&[secret], id, timestamp, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn signs_with_every_secret_during_an_overlap() {
        let (new, old) = (new_secret(), new_secret());
        assert!(new.starts_with("whsec_") && new.len() == 6 + 32, "{new}");
        let both = signature(&[&new, &old], "msg_1", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature(&[&new], "msg_1", 1, b"{}"));
        assert_eq!(parts[1], signature(&[&old], "msg_1", 1, b"{}"));
    }
}
