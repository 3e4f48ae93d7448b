//! What people type, checked and taken apart: channel names, topics, message bodies,
//! reactions, search words, and `Idempotency-Key`s.

use plexichat::http::HeaderMap;
use plexichat::prelude::*;
use sha2::{Digest, Sha256};

use crate::store::Term;

/// Words kept per message in the search index.
const MAX_TERMS: usize = 500;
/// Longer "words" (a URL, a hash) are not indexed.
const MAX_TERM_CHARS: usize = 64;
/// Words a search may combine.
const MAX_QUERY_TERMS: usize = 8;

/// A channel name: 1 to 64 of `a-z 0-9 - _`, starting with a letter or digit; case does not
/// matter (it is kept lowercase), as in Slack and Mattermost URLs.
pub(crate) fn channel_name(field: &str, given: &str) -> Result<String, ApiError> {
    let name = given.trim().to_lowercase();
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_".contains(&byte)
        })
        && name
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_alphanumeric());
    if valid {
        Ok(name)
    } else {
        Err(ApiError::invalid_field(
            field,
            "a channel name is 1 to 64 letters, digits, `-` or `_`, starting with a letter or digit",
        )
        .with_code("invalid_channel_name"))
    }
}

/// A topic: up to 250 characters on one line.
pub(crate) fn topic(field: &str, given: &str) -> Result<String, ApiError> {
    let topic = given.trim();
    if topic.chars().count() > 250 || topic.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            "a topic is up to 250 characters, on one line",
        ));
    }
    Ok(topic.to_string())
}

/// A message body: not blank, at most `max` characters, no control characters but line
/// breaks and tabs (PostgreSQL refuses NUL, and the rest only hide text).
pub(crate) fn body(field: &str, given: &str, max: u32) -> Result<String, ApiError> {
    let body = given.trim_end();
    if body.trim().is_empty() {
        return Err(
            ApiError::invalid_field(field, "a message needs some text").with_code("empty_message")
        );
    }
    let count = body.chars().count();
    if count > max as usize {
        return Err(ApiError::invalid_field(
            field,
            format!("a message is at most {max} characters; this one has {count}"),
        )
        .with_code("message_too_long"));
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid_field(
            field,
            "a message has no control characters other than line breaks and tabs",
        ));
    }
    Ok(body.to_string())
}

/// A reaction: an emoji or a short name, 1 to 64 bytes without spaces or control characters.
pub(crate) fn emoji(field: &str, given: &str) -> Result<String, ApiError> {
    let valid = (1..=64).contains(&given.len())
        && !given.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(given.to_string())
    } else {
        Err(ApiError::invalid_field(
            field,
            "a reaction is an emoji or a name of 1 to 64 bytes, without spaces",
        )
        .with_code("invalid_emoji"))
    }
}

/// The words of `text`, lowercased: runs of letters and digits in any script.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// The distinct words of a message to index.
pub(crate) fn terms(body: &str) -> Vec<String> {
    let mut terms: Vec<String> = words(body)
        .filter(|word| word.chars().count() <= MAX_TERM_CHARS)
        .collect();
    terms.sort_unstable();
    terms.dedup();
    terms.truncate(MAX_TERMS);
    terms
}

/// A search: 1 to 8 words, each matching whole words, or the start of words when it ends
/// with `*`.
pub(crate) fn query(field: &str, q: &str) -> Result<Vec<Term>, ApiError> {
    let mut terms = Vec::new();
    for part in q.split_whitespace() {
        let prefix = part.ends_with('*');
        let mut pieces: Vec<String> = words(part).collect();
        let last = pieces.pop();
        terms.extend(pieces.into_iter().map(|word| Term {
            word,
            prefix: false,
        }));
        if let Some(word) = last {
            terms.push(Term { word, prefix });
        }
    }
    terms.dedup();
    if terms.is_empty() || terms.len() > MAX_QUERY_TERMS {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "`{field}` is 1 to {MAX_QUERY_TERMS} words (letters and digits; end one with `*` to match words starting with it)"
            ),
        ));
    }
    if terms
        .iter()
        .any(|term| term.word.chars().count() > MAX_TERM_CHARS)
    {
        return Err(ApiError::invalid_field(
            field,
            format!("a search word is at most {MAX_TERM_CHARS} characters"),
        ));
    }
    Ok(terms)
}

/// The request's `Idempotency-Key`: 1 to 255 visible ASCII characters, when there is one.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_string()))
        }
        _ => Err(ApiError::invalid_field(
            "Idempotency-Key",
            "the `Idempotency-Key` header is 1 to 255 visible ASCII characters (a UUID, say)",
        )),
    }
}

/// A digest of what a create asked for, to tell a retry from another request that reuses
/// its key.
pub(crate) fn fingerprint(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The 422 for a key reused with a different request.
pub(crate) fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "this `Idempotency-Key` was used for a different request; use a new key for a new request",
    )
    .with_code("idempotency_key_reused")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_distinct_lowercase_words_in_any_script() {
        assert_eq!(
            terms("Hello, hello WORLD! Grüße 東京 v1.2"),
            ["2", "grüße", "hello", "v1", "world", "東京"]
        );
        assert!(terms(&"x".repeat(65)).is_empty(), "too long to be a word");
    }

    #[test]
    fn a_query_is_words_and_a_trailing_star_is_a_prefix() {
        let query = query("q", "Deploy fri* rust-lang").unwrap();
        let shown: Vec<(&str, bool)> = query
            .iter()
            .map(|term| (term.word.as_str(), term.prefix))
            .collect();
        assert_eq!(
            shown,
            [
                ("deploy", false),
                ("fri", true),
                ("rust", false),
                ("lang", false)
            ]
        );
        assert!(super::query("q", "  ").is_err());
        assert!(super::query("q", "* !!").is_err());
        assert!(super::query("q", "a b c d e f g h i").is_err());
    }

    #[test]
    fn bodies_refuse_blank_long_and_hidden_text() {
        assert_eq!(body("body", "hi\n\tthere  \n", 10).unwrap(), "hi\n\tthere");
        assert_eq!(
            body("body", " \n ", 10).unwrap_err().code(),
            "empty_message"
        );
        assert_eq!(
            body("body", "ééé", 2).unwrap_err().code(),
            "message_too_long"
        );
        assert!(body("body", "a\0b", 10).is_err());
        assert!(body("body", "a\u{1b}[2Jb", 10).is_err());
    }

    #[test]
    fn names_are_slugs() {
        assert_eq!(
            channel_name("name", " Town-Square ").unwrap(),
            "town-square"
        );
        for bad in ["", "-x", "a b", "café", &"a".repeat(65)] {
            assert!(channel_name("name", bad).is_err(), "{bad:?}");
        }
    }
}
