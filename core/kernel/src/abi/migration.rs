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
    let reader = Reader {
        sql,
        tokens: tokenize(sql),
    };
    let mut found = Vec::new();
    let mut index = 0;
    while index < reader.tokens.len() {
        let Some(keyword) = reader.word(index) else {
            index += 1;
            continue;
        };
        index = match keyword {
            "CREATE" => reader.create(index, &mut found),
            "ALTER" | "DROP"
                if reader
                    .word(index + 1)
                    .is_some_and(|kind| OBJECT_KINDS.contains(&kind)) =>
            {
                reader.alter_or_drop(index, keyword == "DROP", &mut found)
            }
            "RENAME" if reader.is(index + 1, "TO") => reader.second_word_names(index, &mut found),
            "INSERT" | "REPLACE" if reader.is(index + 1, "INTO") => {
                reader.second_word_names(index, &mut found)
            }
            "DELETE" if reader.is(index + 1, "FROM") => reader.second_word_names(index, &mut found),
            "UPDATE" if reader.update_names_a_table(index) => reader.update(index, &mut found),
            _ => index + 1,
        };
    }
    found
}

/// The tokens of one migration's SQL, read statement by statement by [`touched_objects`];
/// each step takes the index of its keyword and returns the index to read on from.
struct Reader<'sql> {
    sql: &'sql str,
    tokens: Vec<Token>,
}

impl Reader<'_> {
    /// The upper-cased word at `index`, if that token is a bare word.
    fn word(&self, index: usize) -> Option<&str> {
        match self.tokens.get(index) {
            Some(Token::Word(text, _)) => Some(text.as_str()),
            _ => None,
        }
    }

    fn is(&self, index: usize, keyword: &str) -> bool {
        self.word(index).is_some_and(|w| w == keyword)
    }

    /// A name at `index` (possibly `schema.name`); returns it and the index after it.
    fn name_at(&self, index: usize) -> Option<(String, usize)> {
        let mut name = match self.tokens.get(index)? {
            Token::Word(_, original) => original.to_ascii_lowercase(),
            Token::Quoted(text) => text.clone(),
            _ => return None,
        };
        let mut next = index + 1;
        while matches!(self.tokens.get(next), Some(Token::Punct('.'))) {
            match self.tokens.get(next + 1) {
                Some(Token::Word(_, original)) => {
                    name.push_str(&format!(".{}", original.to_ascii_lowercase()))
                }
                Some(Token::Quoted(text)) => name.push_str(&format!(".{text}")),
                _ => break,
            }
            next += 2;
        }
        Some((name, next))
    }

    /// Records `name` as touched by the statement around token `at`.
    fn push(&self, found: &mut Vec<Touched>, name: String, at: usize) {
        found.push(Touched {
            object: name,
            created: None,
            statement: statement_text(self.sql, &self.tokens, at),
        });
    }

    /// The index past an `IF NOT EXISTS` or `IF EXISTS` at `index`, or `index` itself.
    fn skip_if_exists(&self, mut index: usize) -> usize {
        if self.is(index, "IF") && self.is(index + 1, "NOT") && self.is(index + 2, "EXISTS") {
            index += 3;
        } else if self.is(index, "IF") && self.is(index + 1, "EXISTS") {
            index += 2;
        }
        index
    }

    /// `CREATE [modifiers] <kind> [CONCURRENTLY] [IF NOT EXISTS] name`, and for an index or a
    /// trigger also the table it is on.
    fn create(&self, index: usize, found: &mut Vec<Touched>) -> usize {
        let mut at = index + 1;
        while self.word(at).is_some_and(|w| CREATE_MODIFIERS.contains(&w)) {
            at += 1;
        }
        let Some(kind) = self.word(at) else {
            return index + 1;
        };
        at += 1;
        if kind == "INDEX" && self.is(at, "CONCURRENTLY") {
            at += 1;
        }
        at = self.skip_if_exists(at);
        if kind == "INDEX" && self.is(at, "ON") {
            // An unnamed index (PostgreSQL names it after the table).
        } else if let Some((name, after)) = self.name_at(at) {
            self.push(found, name, index);
            if let Some(last) = found.last_mut() {
                last.created = Some(kind.to_string());
            }
            at = after;
        }
        if kind == "INDEX" || kind == "TRIGGER" {
            self.table_on(index, at, found);
        }
        at
    }

    /// The table an index or a trigger is on: the next `ON` of the statement from `at`.
    fn table_on(&self, index: usize, at: usize, found: &mut Vec<Touched>) {
        let mut on = at;
        while on < self.tokens.len()
            && !matches!(self.tokens[on], Token::Punct(';'))
            && !self.is(on, "ON")
        {
            on += 1;
        }
        let table = if self.is(on + 1, "ONLY") {
            on + 2
        } else {
            on + 1
        };
        if self.is(on, "ON")
            && let Some((name, _)) = self.name_at(table)
        {
            self.push(found, name, index);
        }
    }

    /// `ALTER <kind> [IF EXISTS] [ONLY] name` or `DROP <kind> [CONCURRENTLY] [IF EXISTS] a, b`.
    fn alter_or_drop(&self, index: usize, drop: bool, found: &mut Vec<Touched>) -> usize {
        let mut at = index + 2;
        if self.is(at, "CONCURRENTLY") {
            at += 1;
        }
        at = self.skip_if_exists(at);
        if self.is(at, "ONLY") {
            at += 1;
        }
        while let Some((name, after)) = self.name_at(at) {
            self.push(found, name, index);
            at = after;
            // `DROP TABLE a, b`: every name; `ALTER` names one.
            if drop && matches!(self.tokens.get(at), Some(Token::Punct(','))) {
                at += 1;
            } else {
                break;
            }
        }
        at
    }

    /// `RENAME TO name`, `INSERT INTO name`, `REPLACE INTO name` and `DELETE FROM name`: the
    /// name after the keyword's second word.
    fn second_word_names(&self, index: usize, found: &mut Vec<Touched>) -> usize {
        if let Some((name, _)) = self.name_at(index + 2) {
            self.push(found, name, index);
        }
        index + 2
    }

    /// Whether the `UPDATE` at `index` names a table: `DO UPDATE SET` (upserts), `ON UPDATE`
    /// (foreign keys) and `UPDATE ON` / `UPDATE OF` (trigger events) name none.
    fn update_names_a_table(&self, index: usize) -> bool {
        !(index > 0 && (self.is(index - 1, "DO") || self.is(index - 1, "ON")))
            && !self.is(index + 1, "ON")
            && !self.is(index + 1, "OF")
            && !self.is(index + 1, "SET")
    }

    /// `UPDATE [OR <resolution>] [ONLY] name`.
    fn update(&self, index: usize, found: &mut Vec<Touched>) -> usize {
        let mut at = index + 1;
        if self.is(at, "OR") {
            at += 2;
        }
        if self.is(at, "ONLY") {
            at += 1;
        }
        if let Some((name, _)) = self.name_at(at) {
            self.push(found, name, index);
        }
        index + 1
    }
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

/// The tokens of `sql`, with comments, string literals and dollar-quoted bodies left out.
fn tokenize(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'-' if bytes.get(index + 1) == Some(&b'-') => {
                index = line_comment_end(bytes, index);
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                index = block_comment_end(bytes, index);
            }
            b'\'' => index = skip_quoted(bytes, index, b'\''),
            b'"' | b'`' | b'[' => {
                let (token, end) = quoted_identifier(sql, index);
                tokens.push(token);
                index = end;
            }
            b'$' => index = dollar_quoted_end(sql, index),
            b';' => {
                tokens.push(Token::End(index));
                tokens.push(Token::Punct(';'));
                index += 1;
            }
            _ if byte.is_ascii_alphabetic() || byte == b'_' => {
                let (token, end) = bare_word(sql, index);
                tokens.push(token);
                index = end;
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

/// The index of the newline that ends a `--` comment opened at `start`, or the end of input.
fn line_comment_end(bytes: &[u8], start: usize) -> usize {
    let mut index = start;
    while index < bytes.len() && bytes[index] != b'\n' {
        index += 1;
    }
    index
}

/// The index just past the `*/` that closes a comment opened at `start` (past the end of
/// input if it is never closed).
fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    let mut index = start + 2;
    while index < bytes.len() && !(bytes[index] == b'*' && bytes.get(index + 1) == Some(&b'/')) {
        index += 1;
    }
    index + 2
}

/// The `"quoted"`, `` `quoted` `` or `[quoted]` identifier opened at `start`, and the index
/// just past it.
fn quoted_identifier(sql: &str, start: usize) -> (Token, usize) {
    let bytes = sql.as_bytes();
    let close = match bytes[start] {
        b'[' => b']',
        other => other,
    };
    let end = skip_quoted(bytes, start, close);
    let inner = &sql[start + 1..end.saturating_sub(1).max(start + 1)];
    (Token::Quoted(inner.replace("\"\"", "\"")), end)
}

/// The index to read on from after the `$` at `start`: past a dollar-quoted body (`$$ … $$`
/// or `$tag$ … $tag$`), or just past the `$` of a parameter such as `$1`.
fn dollar_quoted_end(sql: &str, start: usize) -> usize {
    let bytes = sql.as_bytes();
    let tag_end = bytes[start + 1..]
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .map(|offset| start + 1 + offset);
    match tag_end {
        Some(end) if bytes[end] == b'$' && !bytes[start + 1].is_ascii_digit() => {
            let tag = &sql[start..=end];
            sql[end + 1..]
                .find(tag)
                .map_or(bytes.len(), |offset| end + 1 + offset + tag.len())
        }
        _ => start + 1,
    }
}

/// The bare word starting at `start` (letters, digits, `_` and `$`), and the index after it.
fn bare_word(sql: &str, start: usize) -> (Token, usize) {
    let bytes = sql.as_bytes();
    let mut index = start;
    while index < bytes.len()
        && (bytes[index].is_ascii_alphanumeric() || bytes[index] == b'_' || bytes[index] == b'$')
    {
        index += 1;
    }
    let original = &sql[start..index];
    (
        Token::Word(original.to_ascii_uppercase(), original.to_string()),
        index,
    )
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
