//! A plugin's SQL migrations as `#[plugin(migrations = "...")]` embeds them, and the rule
//! that a migration touches only objects named with its plugin's prefix, checked by reading
//! the SQL before anything runs.

use serde::Serialize;

/// One migration file, embedded at compile time, in the text each engine runs.
///
/// `migrations/0001_create_stats.sql` serves both engines unless
/// `migrations/sqlite/0001_create_stats.sql` or `migrations/postgres/…` replaces it for one.
#[derive(Debug, Serialize)]
pub struct Migration {
    /// The number before the first `_`: the order, unique within the plugin.
    pub version: u32,
    /// The file name without `.sql`, e.g. `0001_create_stats`.
    pub name: &'static str,
    /// The text SQLite runs, and the file it came from (relative to the crate).
    #[serde(skip)]
    pub sqlite: &'static str,
    /// Where [`Migration::sqlite`] came from, relative to the plugin crate.
    pub sqlite_file: &'static str,
    /// The text PostgreSQL runs.
    #[serde(skip)]
    pub postgres: &'static str,
    /// Where [`Migration::postgres`] came from, relative to the plugin crate.
    pub postgres_file: &'static str,
}

/// An object a migration's statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Touched {
    /// The object, as written (lower-cased unless quoted).
    pub(crate) object: String,
    /// For an object this statement creates: its kind (`TABLE`, `INDEX`, …).
    pub(crate) created: Option<String>,
    /// The statement, whitespace collapsed, for the message.
    pub(crate) statement: String,
}

/// The objects `sql` creates, alters, drops, renames or writes to, each with its statement.
///
/// A reader, not a parser: it skips comments, string literals and PostgreSQL dollar-quoted
/// bodies, and looks for `CREATE [modifiers] <kind> [IF NOT EXISTS] name` (and the table
/// after `ON` for indexes and triggers), `ALTER <kind> [IF EXISTS] [ONLY] name`, `DROP <kind>
/// [IF EXISTS] a, b`, `RENAME TO name`, `INSERT INTO name`, `UPDATE name` and `DELETE FROM
/// name`. A schema-qualified name is reported whole, so it never passes a prefix check.
pub(crate) fn touched_objects(sql: &str) -> Vec<Touched> {
    let tokens = tokenize(sql);
    let mut found = Vec::new();
    let word = |index: usize| -> Option<&str> {
        match tokens.get(index) {
            Some(Token::Word(text, _)) => Some(text.as_str()),
            _ => None,
        }
    };
    let is = |index: usize, keyword: &str| word(index).is_some_and(|w| w == keyword);
    let statement_of = |index: usize| statement_text(sql, &tokens, index);
    // A name at `index` (possibly `schema.name`); returns it and the index after it.
    let name_at = |index: usize| -> Option<(String, usize)> {
        let mut name = match tokens.get(index)? {
            Token::Word(_, original) => original.to_ascii_lowercase(),
            Token::Quoted(text) => text.clone(),
            _ => return None,
        };
        let mut next = index + 1;
        while matches!(tokens.get(next), Some(Token::Punct('.'))) {
            match tokens.get(next + 1) {
                Some(Token::Word(_, original)) => {
                    name.push_str(&format!(".{}", original.to_ascii_lowercase()))
                }
                Some(Token::Quoted(text)) => name.push_str(&format!(".{text}")),
                _ => break,
            }
            next += 2;
        }
        Some((name, next))
    };
    let push = |found: &mut Vec<Touched>, name: String, at: usize| {
        found.push(Touched {
            object: name,
            created: None,
            statement: statement_of(at),
        });
    };
    let skip_if_exists = |mut index: usize| {
        if is(index, "IF") && is(index + 1, "NOT") && is(index + 2, "EXISTS") {
            index += 3;
        } else if is(index, "IF") && is(index + 1, "EXISTS") {
            index += 2;
        }
        index
    };
    let mut index = 0;
    while index < tokens.len() {
        let Some(keyword) = word(index) else {
            index += 1;
            continue;
        };
        match keyword {
            "CREATE" => {
                let mut at = index + 1;
                while word(at).is_some_and(|w| CREATE_MODIFIERS.contains(&w)) {
                    at += 1;
                }
                let Some(kind) = word(at) else {
                    index += 1;
                    continue;
                };
                at += 1;
                if kind == "INDEX" && is(at, "CONCURRENTLY") {
                    at += 1;
                }
                at = skip_if_exists(at);
                if kind == "INDEX" && is(at, "ON") {
                    // An unnamed index (PostgreSQL names it after the table).
                } else if let Some((name, after)) = name_at(at) {
                    push(&mut found, name, index);
                    if let Some(last) = found.last_mut() {
                        last.created = Some(kind.to_string());
                    }
                    at = after;
                }
                if kind == "INDEX" || kind == "TRIGGER" {
                    // The table an index or a trigger is on: the next `ON` of the statement.
                    let mut on = at;
                    while on < tokens.len()
                        && !matches!(tokens[on], Token::Punct(';'))
                        && !is(on, "ON")
                    {
                        on += 1;
                    }
                    let table = if is(on + 1, "ONLY") { on + 2 } else { on + 1 };
                    if is(on, "ON")
                        && let Some((name, _)) = name_at(table)
                    {
                        push(&mut found, name, index);
                    }
                }
                index = at;
            }
            "ALTER" | "DROP"
                if word(index + 1).is_some_and(|kind| OBJECT_KINDS.contains(&kind)) =>
            {
                let mut at = index + 2;
                if is(at, "CONCURRENTLY") {
                    at += 1;
                }
                at = skip_if_exists(at);
                if is(at, "ONLY") {
                    at += 1;
                }
                while let Some((name, after)) = name_at(at) {
                    push(&mut found, name, index);
                    at = after;
                    // `DROP TABLE a, b`: every name; `ALTER` names one.
                    if keyword == "DROP" && matches!(tokens.get(at), Some(Token::Punct(','))) {
                        at += 1;
                    } else {
                        break;
                    }
                }
                index = at;
            }
            "RENAME" if is(index + 1, "TO") => {
                if let Some((name, _)) = name_at(index + 2) {
                    push(&mut found, name, index);
                }
                index += 2;
            }
            "INSERT" | "REPLACE" if is(index + 1, "INTO") => {
                if let Some((name, _)) = name_at(index + 2) {
                    push(&mut found, name, index);
                }
                index += 2;
            }
            "DELETE" if is(index + 1, "FROM") => {
                if let Some((name, _)) = name_at(index + 2) {
                    push(&mut found, name, index);
                }
                index += 2;
            }
            // `DO UPDATE SET` (upserts), `ON UPDATE` (foreign keys) and `UPDATE ON` / `UPDATE
            // OF` (trigger events) name no table.
            "UPDATE"
                if !(index > 0 && (is(index - 1, "DO") || is(index - 1, "ON")))
                    && !is(index + 1, "ON")
                    && !is(index + 1, "OF")
                    && !is(index + 1, "SET") =>
            {
                let mut at = index + 1;
                if is(at, "OR") {
                    at += 2;
                }
                if is(at, "ONLY") {
                    at += 1;
                }
                if let Some((name, _)) = name_at(at) {
                    push(&mut found, name, index);
                }
                index += 1;
            }
            _ => index += 1,
        }
    }
    found
}

/// The tables `migrations` create (for listings), in order, each once.
pub fn tables(migrations: &[Migration]) -> Vec<String> {
    let mut tables: Vec<String> = Vec::new();
    for migration in migrations {
        for sql in [migration.sqlite, migration.postgres] {
            for touched in touched_objects(sql) {
                if touched.created.as_deref() == Some("TABLE") && !tables.contains(&touched.object)
                {
                    tables.push(touched.object);
                }
            }
        }
    }
    tables
}

/// Words that may stand between `CREATE` and the kind of object.
const CREATE_MODIFIERS: [&str; 10] = [
    "OR",
    "REPLACE",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "UNIQUE",
    "VIRTUAL",
    "MATERIALIZED",
    "GLOBAL",
    "LOCAL",
];

/// The kinds of object `ALTER` and `DROP` are checked for.
const OBJECT_KINDS: [&str; 9] = [
    "TABLE",
    "INDEX",
    "VIEW",
    "TRIGGER",
    "SEQUENCE",
    "TYPE",
    "FUNCTION",
    "PROCEDURE",
    "MATERIALIZED",
];

#[derive(Debug, PartialEq)]
enum Token {
    /// A bare word, upper-cased, and as written.
    Word(String, String),
    /// A `"quoted"`, `` `quoted` `` or `[quoted]` identifier, as written inside the quotes.
    Quoted(String),
    /// Any other character outside literals and comments.
    Punct(char),
    /// The byte offset where a statement ends (a `;`), for messages.
    End(usize),
}

fn tokenize(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'-' if bytes.get(index + 1) == Some(&b'-') => {
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                index += 2;
                while index < bytes.len()
                    && !(bytes[index] == b'*' && bytes.get(index + 1) == Some(&b'/'))
                {
                    index += 1;
                }
                index += 2;
            }
            b'\'' => index = skip_quoted(bytes, index, b'\''),
            b'"' | b'`' | b'[' => {
                let close = match byte {
                    b'[' => b']',
                    other => other,
                };
                let end = skip_quoted(bytes, index, close);
                let inner = &sql[index + 1..end.saturating_sub(1).max(index + 1)];
                tokens.push(Token::Quoted(inner.replace("\"\"", "\"")));
                index = end;
            }
            b'$' => {
                // A dollar-quoted body: `$$ … $$` or `$tag$ … $tag$`; `$1` is a parameter.
                let tag_end = bytes[index + 1..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map(|offset| index + 1 + offset);
                match tag_end {
                    Some(end) if bytes[end] == b'$' && !bytes[index + 1].is_ascii_digit() => {
                        let tag = &sql[index..=end];
                        index = sql[end + 1..]
                            .find(tag)
                            .map_or(bytes.len(), |offset| end + 1 + offset + tag.len());
                    }
                    _ => index += 1,
                }
            }
            b';' => {
                tokens.push(Token::End(index));
                tokens.push(Token::Punct(';'));
                index += 1;
            }
            _ if byte.is_ascii_alphabetic() || byte == b'_' => {
                let start = index;
                while index < bytes.len()
                    && (bytes[index].is_ascii_alphanumeric()
                        || bytes[index] == b'_'
                        || bytes[index] == b'$')
                {
                    index += 1;
                }
                let original = &sql[start..index];
                tokens.push(Token::Word(
                    original.to_ascii_uppercase(),
                    original.to_string(),
                ));
            }
            _ if byte.is_ascii_whitespace() => index += 1,
            _ => {
                let character = sql[index..].chars().next().unwrap_or(' ');
                tokens.push(Token::Punct(character));
                index += character.len_utf8();
            }
        }
    }
    tokens
}

/// The index just past a literal opened at `start` and closed by `close` (doubled to escape).
fn skip_quoted(bytes: &[u8], start: usize, close: u8) -> usize {
    let mut index = start + 1;
    while index < bytes.len() {
        if bytes[index] == close {
            if bytes.get(index + 1) == Some(&close) && close != b']' {
                index += 2;
                continue;
            }
            return index + 1;
        }
        index += 1;
    }
    bytes.len()
}

/// The statement around token `at`: from the previous `;` to the next, whitespace collapsed
/// and cut at 200 characters.
fn statement_text(sql: &str, tokens: &[Token], at: usize) -> String {
    let start = tokens[..at]
        .iter()
        .rev()
        .find_map(|token| match token {
            Token::End(offset) => Some(offset + 1),
            _ => None,
        })
        .unwrap_or(0);
    let end = tokens[at..]
        .iter()
        .find_map(|token| match token {
            Token::End(offset) => Some(*offset),
            _ => None,
        })
        .unwrap_or(sql.len());
    let text: Vec<&str> = sql[start..end]
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    let mut text = text.join(" ");
    if text.chars().count() > 200 {
        text = text.chars().take(199).collect::<String>() + "…";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(sql: &str) -> Vec<String> {
        touched_objects(sql).into_iter().map(|t| t.object).collect()
    }

    #[test]
    fn finds_what_each_kind_of_statement_touches() {
        let cases: &[(&str, &[&str])] = &[
            (
                "CREATE TABLE demo_stats (id INTEGER PRIMARY KEY)",
                &["demo_stats"],
            ),
            (
                "create table if not exists Demo_Stats (id int)",
                &["demo_stats"],
            ),
            ("CREATE TEMP TABLE other (x int)", &["other"]),
            (
                "CREATE UNIQUE INDEX demo_i ON demo_t (a)",
                &["demo_i", "demo_t"],
            ),
            (
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS demo_i ON ONLY demo_t (a)",
                &["demo_i", "demo_t"],
            ),
            ("CREATE INDEX ON other (a)", &["other"]),
            (
                "CREATE TRIGGER demo_tr AFTER UPDATE ON other FOR EACH ROW BEGIN UPDATE demo_t SET a = 1; END",
                &["demo_tr", "other", "demo_t"],
            ),
            ("ALTER TABLE demo_t ADD COLUMN b TEXT", &["demo_t"]),
            (
                "ALTER TABLE IF EXISTS ONLY other ADD COLUMN b TEXT",
                &["other"],
            ),
            ("ALTER TABLE demo_t RENAME TO other", &["demo_t", "other"]),
            ("ALTER TABLE demo_t RENAME COLUMN a TO b", &["demo_t"]),
            ("DROP TABLE IF EXISTS demo_a, other", &["demo_a", "other"]),
            (
                "INSERT INTO other (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2",
                &["other"],
            ),
            ("UPDATE other SET a = 1", &["other"]),
            ("DELETE FROM other", &["other"]),
            ("CREATE TABLE public.demo_t (a int)", &["public.demo_t"]),
            ("CREATE TABLE \"Demo_T\" (a int)", &["Demo_T"]),
            (
                "CREATE OR REPLACE FUNCTION other() RETURNS int AS $$ DROP TABLE hidden; $$ LANGUAGE sql",
                &["other"],
            ),
            (
                "-- CREATE TABLE commented (a int)\nSELECT 'DROP TABLE quoted'; /* DROP TABLE x */",
                &[],
            ),
            (
                "CREATE TABLE demo_t (a int REFERENCES demo_u (id) ON UPDATE CASCADE)",
                &["demo_t"],
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(objects(sql), *expected, "{sql}");
        }
    }

    #[test]
    fn names_the_statement_outside_the_prefix() {
        let sql =
            "CREATE TABLE demo_a (x int);\n\n-- then\nINSERT INTO\n  users (name)\n  VALUES ('x');";
        let touched = touched_objects(sql);
        assert_eq!(touched[1].object, "users");
        assert_eq!(
            touched[1].statement,
            "INSERT INTO users (name) VALUES ('x')"
        );
    }
}
