//! How a configuration's problems are reported: each [`ConfigIssue`] located by JSON pointer,
//! with secrets redacted and long values shortened, and all of them in [`ConfigErrors`].

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::database;
use super::secret::REDACTED;

/// One problem in a configuration, located by JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigIssue {
    /// The plugin whose section is wrong, if it is a plugin section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Where: a JSON pointer into the document, e.g. `/plugins/my_awesome_plugin/interval`.
    pub pointer: String,
    /// The value found there, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<Value>,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl ConfigIssue {
    /// An issue at `pointer`. The value found is redacted where the key holds a secret (the
    /// admin token, or a plugin setting whose name says token, secret, password or key) and
    /// shortened where it is long, and the problem text loses the same way, so that
    /// validation messages and reload error bodies never echo a secret or a megabyte.
    pub(crate) fn new(
        pointer: impl Into<String>,
        found: Option<Value>,
        problem: impl Into<String>,
    ) -> Self {
        let pointer = pointer.into();
        let plugin = pointer
            .strip_prefix("/plugins/")
            .map(|rest| rest.split('/').next().unwrap_or_default().to_string());
        let mut problem = problem.into();
        let found = found.map(|value| {
            let mut secrets = Vec::new();
            let redacted = redact(&value, is_secret_pointer(&pointer), &mut secrets);
            // Messages quote values in JSON (`"abc"`) or bare (`abc`): remove both forms of
            // every secret, longest first so that one secret inside another goes too.
            secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
            for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
                problem = remove_secret(&problem, secret);
            }
            let shown = shorten(&redacted);
            if let (true, Value::String(raw)) = (shown != redacted, &redacted) {
                problem = problem
                    .replace(&redacted.to_string(), &shown.to_string())
                    .replace(raw.as_str(), &cut(raw, MAX_VALUE_CHARS));
            }
            shown
        });
        ConfigIssue {
            plugin,
            pointer,
            found,
            problem: cut(&problem, MAX_PROBLEM_CHARS),
        }
    }
}

/// Secrets shorter than this are removed from a message only where it quotes them: bare,
/// `5` or `ab` would take the same letters out of every word and number of the message.
const SHORT_SECRET_CHARS: usize = 6;

/// `problem` without `secret`: its JSON-quoted and backtick-quoted forms always, and its
/// bare occurrences that stand alone (not inside a longer word) when it is not short.
fn remove_secret(problem: &str, secret: &str) -> String {
    let mut text = problem
        .replace(&Value::String(secret.to_string()).to_string(), REDACTED)
        .replace(&format!("`{secret}`"), &format!("`{REDACTED}`"));
    if secret.chars().count() < SHORT_SECRET_CHARS {
        return text;
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    while let Some(at) = text.find(secret) {
        let before = text[..at].chars().next_back();
        let after = text[at + secret.len()..].chars().next();
        let alone = !before.is_some_and(word) && !after.is_some_and(word);
        out.push_str(&text[..at]);
        out.push_str(if alone { REDACTED } else { secret });
        text = text[at + secret.len()..].to_string();
    }
    out.push_str(&text);
    out
}

/// Longest problem text an issue carries.
pub(super) const MAX_PROBLEM_CHARS: usize = 300;
/// Longest string value an issue shows.
const MAX_VALUE_CHARS: usize = 100;

/// Whether the key at `pointer`, or any key above it, holds a secret: the admin token, or
/// any key whose name contains `token`, `secret`, `password`, `passwd` or `key` (as in
/// `api_key`).
pub fn is_secret_pointer(pointer: &str) -> bool {
    pointer.split('/').any(is_secret_key)
}

pub(super) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "secret", "password", "passwd", "key"]
        .iter()
        .any(|word| key.contains(word))
}

/// `value` with every secret replaced by [`REDACTED`]: all of it when `secret`, else the
/// values of secret keys at any depth; the texts removed are added to `secrets`.
fn redact(value: &Value, secret: bool, secrets: &mut Vec<String>) -> Value {
    if secret {
        collect_leaves(value, secrets);
        return Value::String(REDACTED.to_string());
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), redact(value, is_secret_key(key), secrets)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| redact(item, false, secrets))
                .collect(),
        ),
        // A URL's password (`postgres://user:password@host`), wherever it is configured.
        Value::String(text) => {
            let shown = database::redact_url(text);
            if shown != *text {
                secrets.push(text.clone());
            }
            Value::String(shown)
        }
        other => other.clone(),
    }
}

fn collect_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Number(number) => out.push(number.to_string()),
        Value::Bool(flag) => out.push(flag.to_string()),
        Value::Array(items) => items.iter().for_each(|item| collect_leaves(item, out)),
        Value::Object(map) => map.values().for_each(|item| collect_leaves(item, out)),
        Value::Null => {}
    }
}

/// A value short enough for a message: long strings are cut, large arrays and objects are
/// described instead of shown.
fn shorten(value: &Value) -> Value {
    match value {
        Value::String(text) if text.chars().count() > MAX_VALUE_CHARS => {
            Value::String(cut(text, MAX_VALUE_CHARS))
        }
        Value::Array(items) if value.to_string().len() > MAX_VALUE_CHARS => {
            Value::String(format!("(an array of {} items)", items.len()))
        }
        Value::Object(map) if value.to_string().len() > MAX_VALUE_CHARS => {
            Value::String(format!("(a table of {} keys)", map.len()))
        }
        other => other.clone(),
    }
}

/// `text` cut to `max` characters, marked with `…` when cut.
pub(super) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

/// `plugin `name`: /pointer: problem`. An issue with the whole document (a TOML syntax error,
/// a file that cannot be read) has no pointer to show: it is the problem alone, and
/// [`ConfigErrors`] puts the file's name before it.
impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(plugin) = &self.plugin {
            write!(f, "plugin `{plugin}`: ")?;
        }
        if !self.pointer.is_empty() {
            write!(f, "{}: ", self.pointer)?;
        }
        f.write_str(&self.problem)
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigErrors {
    /// Where the configuration came from, for messages.
    pub source: String,
    /// The problems, in document order.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        write!(
            f,
            "{} has {count} problem{}:",
            self.source,
            if count == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            if issue.pointer.is_empty() {
                write!(f, "\n  {}: {issue}", self.source)?;
            } else {
                write!(f, "\n  {issue}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn a_short_secret_is_removed_where_quoted_and_leaves_the_words_alone() {
        let issue = ConfigIssue::new(
            "/plugins/x/api_key",
            Some(Value::String("ab".into())),
            "`ab` is too short: about 32 characters are needed, \"ab\" has 2",
        );
        assert_eq!(
            issue.problem,
            "`[redacted]` is too short: about 32 characters are needed, [redacted] has 2"
        );
        let issue = ConfigIssue::new(
            "/plugins/x/token",
            Some(serde_json::json!(5)),
            "expected a string, found 5 at line 5",
        );
        assert_eq!(issue.problem, "expected a string, found 5 at line 5");
    }

    #[test]
    fn a_long_secret_is_removed_wherever_it_stands_alone() {
        let issue = ConfigIssue::new(
            "/plugins/x/password",
            Some(Value::String("hunter22".into())),
            "hunter22 is not allowed (hunter22x is a different word), \"hunter22\"",
        );
        assert_eq!(
            issue.problem,
            "[redacted] is not allowed (hunter22x is a different word), [redacted]"
        );
    }
}
