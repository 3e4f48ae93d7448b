//! The secrets accounts handle: random tokens and their digests, Argon2id password hashes
//! (computed off the async threads), and TOTP codes (RFC 6238: HMAC-SHA-1, 6 digits, 30 s).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD, HEXLOWER};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is a broken system; nothing secure can be issued then.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

/// A bearer secret: `prefix` then 256 random bits, URL-safe. The prefix tells what kind of
/// token a leaked string is (secret scanners match on it).
pub(crate) fn token(prefix: &str) -> String {
    format!("{prefix}{}", BASE64URL_NOPAD.encode(&random_bytes::<32>()))
}

/// The SHA-256 digest of a token, in hex: what the database keeps. Tokens carry 256 random
/// bits, so a fast digest is enough (no one can guess a preimage).
pub(crate) fn digest(token: &str) -> String {
    HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// The cost of password hashes, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cost {
    pub memory_kib: u32,
    pub iterations: u32,
}

fn argon2(cost: Cost) -> Argon2<'static> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The Argon2id PHC string of `password`, computed on a blocking thread (tens of
/// milliseconds of CPU and `memory_kib` of memory).
pub(crate) async fn hash_password(password: String, cost: Cost) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        argon2(cost)
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| format!("hashing a password failed: {error}"))
    })
    .await
    .map_err(|error| format!("hashing a password failed: {error}"))?
}

/// Whether `password` matches `hash` (a PHC string; its own parameters are used). A stored
/// hash that cannot be parsed matches nothing.
pub(crate) async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        // The parameters in the string decide; these only choose the implementation.
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// The number of digits of a code.
pub(crate) const TOTP_DIGITS: u32 = 6;
/// The seconds a code lasts.
pub(crate) const TOTP_PERIOD: u64 = 30;

/// A new TOTP secret: 160 random bits (RFC 4226's recommended length), base32 without padding,
/// as authenticator apps take it.
pub(crate) fn totp_secret() -> String {
    BASE32_NOPAD.encode(&random_bytes::<20>())
}

/// The time step of `unix_seconds`.
pub(crate) fn totp_step(unix_seconds: u64) -> u64 {
    unix_seconds / TOTP_PERIOD
}

/// The code for `step` (RFC 4226's HOTP with the step as the counter), zero-padded.
pub(crate) fn totp_code(secret: &str, step: u64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&key).ok()?;
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = (u32::from(hash[offset]) & 0x7f) << 24
        | u32::from(hash[offset + 1]) << 16
        | u32::from(hash[offset + 2]) << 8
        | u32::from(hash[offset + 3]);
    let code = binary % 10u32.pow(TOTP_DIGITS);
    Some(format!("{code:0width$}", width = TOTP_DIGITS as usize))
}

/// The step `code` is valid for at `unix_seconds`, allowing one step of clock drift either
/// way; `None` when it matches none. Compared in constant time.
pub(crate) fn totp_match(secret: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let now = totp_step(unix_seconds);
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .find(|&step| {
            totp_code(secret, step)
                .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(code.as_bytes())))
        })
}

/// The `otpauth://` URI an authenticator app scans: issuer and account percent-encoded.
pub(crate) fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    let (issuer, account) = (percent_encode(issuer), percent_encode(account));
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_PERIOD}"
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A one-time recovery code: ten base32 characters in two groups (`abcde-fghij`), 50 bits.
pub(crate) fn recovery_code() -> String {
    let text = BASE32_NOPAD
        .encode(&random_bytes::<10>())
        .to_ascii_lowercase();
    format!("{}-{}", &text[..5], &text[5..10])
}

/// A recovery code as typed, in the form it was issued (lowercase, with its dash).
pub(crate) fn normalize_recovery_code(code: &str) -> String {
    let compact: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if compact.len() == 10 {
        format!("{}-{}", &compact[..5], &compact[5..])
    } else {
        compact
    }
}

/// The QR code of `text` (error correction M), as rows of `1` (dark) and `0` (light); empty
/// if it is too long for a QR code, which an `otpauth://` URI never is.
pub(crate) fn qr_modules(text: &str) -> Vec<String> {
    let Ok(code) = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M) else {
        return Vec::new();
    };
    code.to_colors()
        .chunks(code.width())
        .map(|row| {
            row.iter()
                .map(|color| {
                    if *color == qrcode::Color::Dark {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret is ASCII "12345678901234567890"; the RFC's
    /// 8-digit codes end in the 6 digits ours give.
    #[test]
    fn codes_match_rfc_6238_test_vectors() {
        let secret = BASE32_NOPAD.encode(b"12345678901234567890");
        for (time, eight_digits) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let code = totp_code(&secret, totp_step(time)).unwrap();
            assert_eq!(code, eight_digits[2..], "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = totp_secret();
        let now = 1_700_000_000;
        let code = totp_code(&secret, totp_step(now)).unwrap();
        assert_eq!(totp_match(&secret, &code, now), Some(totp_step(now)));
        assert_eq!(totp_match(&secret, &code, now + 30), Some(totp_step(now)));
        assert_eq!(totp_match(&secret, &code, now + 90), None);
        assert_eq!(totp_match(&secret, "12345", now), None);
        assert_eq!(totp_match(&secret, "abcdef", now), None);
    }

    #[test]
    fn the_uri_names_the_parameters_and_escapes_names() {
        let uri = otpauth_uri("Plexi Chat", "a&b", "ABC");
        assert_eq!(
            uri,
            "otpauth://totp/Plexi%20Chat:a%26b?secret=ABC&issuer=Plexi%20Chat&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_read_back_however_typed() {
        let code = recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(
            normalize_recovery_code(&code.to_uppercase().replace('-', " ")),
            code
        );
    }

    #[tokio::test]
    async fn passwords_verify_against_their_hash_only() {
        let cost = Cost {
            memory_kib: 1024,
            iterations: 1,
        };
        let hash = hash_password("correct horse".into(), cost).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(verify_password("correct horse".into(), hash.clone()).await);
        assert!(!verify_password("correct horsf".into(), hash).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }
}
