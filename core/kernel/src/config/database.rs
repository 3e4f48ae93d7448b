//! `[data] database`: which database the server uses, as a URL whose password no rendering
//! shows. Unset means embedded SQLite in the data folder.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::secret::REDACTED;

/// The engines a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Embedded SQLite (`sqlite:` URLs).
    Sqlite,
    /// PostgreSQL (`postgres:` or `postgresql:` URLs).
    Postgres,
}

impl Engine {
    /// `sqlite` or `postgres`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database URL: `sqlite:path/to/file.db`, `sqlite::memory:`, or
/// `postgres://user:password@host:5432/name`. `Debug`, `Display` and serialisation show it
/// with the password replaced; [`DatabaseUrl::expose`] gives the real one to the driver only.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    engine: Engine,
}

impl DatabaseUrl {
    /// Checks the scheme and, for PostgreSQL, the URL's syntax; the error names the URL
    /// without its password and says what is expected.
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        let shown = redact_url(text);
        let scheme = text.split(':').next().unwrap_or_default();
        let engine = match scheme {
            "sqlite" => Engine::Sqlite,
            "postgres" | "postgresql" => Engine::Postgres,
            _ if !text.contains(':') => {
                return Err(format!(
                    "`{shown}` is not a database URL; expected `sqlite:path/to/file.db` or `postgres://user:password@host/database`"
                ));
            }
            other => {
                return Err(format!(
                    "unknown database scheme `{other}:` in `{shown}`; expected `sqlite:` or `postgres:`"
                ));
            }
        };
        if engine == Engine::Postgres {
            let parsed = url::Url::parse(text)
                .map_err(|error| format!("`{shown}` is not a valid PostgreSQL URL: {error}"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!(
                    "`{shown}` names no host; expected `postgres://user:password@host/database`"
                ));
            }
        } else if text
            .trim_start_matches("sqlite:")
            .trim_start_matches("//")
            .is_empty()
        {
            return Err(format!(
                "`{shown}` names no file; expected `sqlite:path/to/file.db` or `sqlite::memory:`"
            ));
        }
        Ok(DatabaseUrl {
            url: text.to_string(),
            engine,
        })
    }

    /// An embedded SQLite database at `path`.
    pub fn sqlite_file(path: &std::path::Path) -> DatabaseUrl {
        DatabaseUrl {
            url: format!("sqlite://{}", path.display()),
            engine: Engine::Sqlite,
        }
    }

    /// The engine the URL names.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with its password; for the driver only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with its password replaced, for messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

/// `text` with the password of a `scheme://user:password@host` URL replaced by
/// [`REDACTED`]; any other text unchanged.
pub fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &text[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return text.to_string();
    };
    format!(
        "{}{}:{REDACTED}{}",
        &text[..authority_start],
        &userinfo[..colon],
        &text[authority_start + at..]
    )
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DatabaseUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for DatabaseUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DatabaseUrl".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`sqlite:path/to/file.db` or `postgres://user:password@host/database`"
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db.local:5432/chat?sslmode=require")
            .unwrap();
        for text in [
            format!("{url:?}"),
            url.to_string(),
            serde_json::to_string(&url).unwrap(),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.contains("postgres://app:[redacted]@db.local:5432/chat"),
                "{text}"
            );
        }
        assert_eq!(url.engine(), Engine::Postgres);
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            redact_url("postgres://only-user@h/d"),
            "postgres://only-user@h/d"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@h/d"),
            "postgres://u:[redacted]@h/d"
        );
    }

    #[test]
    fn bad_urls_say_what_is_expected_without_the_password() {
        let cases = [
            (
                "mysql://root:hunter2@localhost/x",
                "unknown database scheme `mysql:`",
            ),
            ("just-a-name", "is not a database URL"),
            ("postgres:/x", "names no host"),
            ("postgres://u:hunter2@/x", "is not a valid PostgreSQL URL"),
            (
                "postgres://u:hunter2@[::1/x",
                "is not a valid PostgreSQL URL",
            ),
            ("sqlite:", "names no file"),
        ];
        for (text, expected) in cases {
            let error = DatabaseUrl::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap().engine(),
            Engine::Sqlite
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/d").unwrap().engine(),
            Engine::Postgres
        );
    }
}
