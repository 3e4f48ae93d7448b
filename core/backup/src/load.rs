//! Loading an archive's rows into a database of either engine, inside the caller's
//! transaction: this binary's migrations, up to the versions the archive records, build the
//! schema; then every table's rows go in, each value converted to its column's type there.
//!
//! This is how a backup moves between engines (SQLite into PostgreSQL and back) and how a
//! PostgreSQL export comes back at all. Only portable column types travel: integers,
//! floating point, text, bytes and booleans; PostgreSQL columns of other types receive text
//! cast to their type.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::BufRead;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use sqlx::{Connection, Executor, Row};
use tokio::sync::mpsc;

use super::BackupError;
use super::create::{portable, quote, tables};
use super::{Manifest, TABLES_DIR};
use plexichat_kernel::config::database::Engine;
use plexichat_kernel::registry::Registry;
use plexichat_kernel::storage::migrate;

/// Where an archive's rows are, once extracted.
#[derive(Debug)]
pub(crate) enum Source {
    /// A SQLite snapshot.
    Sqlite(PathBuf),
    /// A folder of `<table>.jsonl` exports (PostgreSQL's).
    Tables(PathBuf),
}

/// What a load put in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Tables filled.
    pub tables: usize,
    /// Rows inserted.
    pub rows: u64,
}

/// One step of reading a source: a table starts, or some of its rows.
enum Item {
    Table { name: String, columns: Vec<String> },
    Rows(Vec<Vec<Value>>),
}

type Items = mpsc::Sender<Result<Item, BackupError>>;

/// Rows handed over at a time, at most; one `INSERT` carries at most [`MAX_PARAMETERS`]
/// values.
const BATCH_ROWS: usize = 500;
/// Bytes of values handed over at a time, at most (a larger row goes alone).
const BATCH_BYTES: usize = 16 << 20;
/// Below both engines' limits on bound parameters (SQLite 32 766, PostgreSQL 65 535).
const MAX_PARAMETERS: usize = 10_000;

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Builds the archived schema on `connection` (inside a transaction the caller opened, on
/// a database holding none of PlexiChat's tables) and fills it from `source`.
pub(crate) async fn load(
    connection: &mut sqlx::AnyConnection,
    engine: Engine,
    registry: &Registry,
    manifest: &Manifest,
    source: Source,
) -> Result<Loaded, BackupError> {
    run_archived_migrations(connection, engine, registry, manifest).await?;
    if engine == Engine::Sqlite {
        // Until the commit: a table whose rows point at each other (a self-referencing key)
        // loads in any row order.
        connection.execute("PRAGMA defer_foreign_keys = ON").await?;
    } else {
        connection.execute("SET CONSTRAINTS ALL DEFERRED").await?;
    }
    let known = tables(registry);
    let (mut items, reader) = read(source, known.clone());
    let mut target: Option<Target> = None;
    let mut loaded = Loaded::default();
    let mut filled = Vec::new();
    while let Some(item) = items.recv().await {
        match item? {
            Item::Table { name, columns } => {
                // Only PlexiChat's own tables are ever emptied and filled, whatever the
                // archive names.
                if !known.contains(&name) {
                    return Err(BackupError::Failed(format!(
                        "the archive holds table `{name}`, which none of this binary's migrations create"
                    )));
                }
                let described = Target::describe(connection, engine, &name, &columns).await?;
                // Whatever the migrations seeded is replaced by what the archive holds.
                connection
                    .execute(sqlx::AssertSqlSafe(format!("DELETE FROM {}", quote(&name))))
                    .await?;
                loaded.tables += 1;
                filled.push(name);
                target = Some(described);
            }
            Item::Rows(rows) => {
                let Some(target) = &target else {
                    return Err(BackupError::Failed("rows before their table".to_string()));
                };
                loaded.rows += rows.len() as u64;
                target.insert(connection, &rows).await?;
            }
        }
    }
    // A reader that panicked drops its sender like one that finished: tell them apart, so
    // that half an archive is never committed.
    reader.await.map_err(|error| {
        BackupError::Failed(format!("reading the archive's rows failed: {error}"))
    })?;
    if engine == Engine::Postgres {
        for table in &filled {
            reset_sequences(connection, table).await?;
        }
    }
    Ok(loaded)
}

/// Builds the archived schema on `connection`: the table of applied migrations, then every
/// migration of this binary that `manifest` records as applied.
async fn run_archived_migrations(
    connection: &mut sqlx::AnyConnection,
    engine: Engine,
    registry: &Registry,
    manifest: &Manifest,
) -> Result<(), BackupError> {
    connection.execute(migrate::BOOTSTRAP).await?;
    for (owner, migrations) in migrate::owners(registry.plugins()) {
        for migration in migrations {
            let archived = manifest
                .migrations
                .iter()
                .any(|m| m.plugin == owner && m.version == i64::from(migration.version));
            if archived {
                migrate::run_and_record(connection, engine, owner, migration)
                    .await
                    .map_err(|error| BackupError::Failed(error.to_string()))?;
            }
        }
    }
    Ok(())
}

/// `found` without the migration records (the target's own are written as its migrations
/// run, with its engine's checksums), in the order the migrations create the tables, so that
/// a table is filled after those its foreign keys point at.
fn ordered(mut found: Vec<String>, order: &[String]) -> Vec<String> {
    found.retain(|table| table != "plexichat_migrations");
    found.sort_by_key(|table| {
        (
            order
                .iter()
                .position(|known| known == table)
                .unwrap_or(usize::MAX),
            table.clone(),
        )
    });
    found
}

/// Reads `source` on a task of its own, so that reading and inserting overlap; returns the
/// items and the task, to be awaited once the items end.
fn read(
    source: Source,
    order: Vec<String>,
) -> (
    mpsc::Receiver<Result<Item, BackupError>>,
    tokio::task::JoinHandle<()>,
) {
    let (sender, receiver) = mpsc::channel(4);
    let reader = match source {
        Source::Sqlite(path) => tokio::spawn(async move {
            if let Err(error) = read_sqlite(&path, &order, &sender).await {
                let _ = sender.send(Err(error)).await;
            }
        }),
        Source::Tables(dir) => tokio::task::spawn_blocking(move || {
            if let Err(error) = read_tables(&dir, &order, &sender) {
                let _ = sender.blocking_send(Err(error));
            }
        }),
    };
    (receiver, reader)
}

/// Roughly how many bytes `values` take: batches are bounded by size as well as by rows, so
/// that large values neither fill memory nor make one statement too large.
fn weight(values: &[Value]) -> usize {
    values
        .iter()
        .map(|value| match value {
            Value::String(text) => text.len(),
            Value::Object(map) => map.values().map(|v| v.as_str().map_or(8, str::len)).sum(),
            _ => 8,
        })
        .sum()
}

async fn read_sqlite(path: &Path, order: &[String], sender: &Items) -> Result<(), BackupError> {
    use futures_util::TryStreamExt;
    // Read-write: it is the restore's own extracted copy, and a WAL-mode file opened
    // read-only needs its shared-memory file to exist already.
    let url = format!("sqlite://{}?mode=rw", path.to_string_lossy());
    plexichat_kernel::storage::database::install_drivers();
    let mut connection = sqlx::AnyConnection::connect(&url).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_all(&mut connection)
    .await?;
    for table in ordered(names, order) {
        // `table_info` leaves generated columns out: the target computes them itself.
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                .bind(&table)
                .fetch_all(&mut connection)
                .await?;
        let start = Item::Table {
            name: table.clone(),
            columns: columns.clone(),
        };
        if sender.send(Ok(start)).await.is_err() {
            break;
        }
        // `+column` is SQLite's no-op operator: the value as stored, without the declared
        // type, which sqlx's `Any` driver refuses for some (`BOOLEAN`).
        let select = format!(
            "SELECT {} FROM {}",
            columns
                .iter()
                .map(|c| format!("+{}", quote(c)))
                .collect::<Vec<_>>()
                .join(", "),
            quote(&table)
        );
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut connection);
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut bytes = 0;
        while let Some(row) = rows.try_next().await? {
            let values = (0..columns.len())
                .map(|i| portable(&row, i))
                .collect::<Result<Vec<_>, _>>()?;
            bytes += weight(&values);
            batch.push(values);
            if batch.len() == BATCH_ROWS || bytes >= BATCH_BYTES {
                bytes = 0;
                if sender
                    .send(Ok(Item::Rows(std::mem::take(&mut batch))))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() && sender.send(Ok(Item::Rows(batch))).await.is_err() {
            return Ok(());
        }
    }
    let _ = connection.close().await;
    Ok(())
}

/// Sends the rows of every `<table>.jsonl` export in `dir`, tables in `order`; stops early,
/// without an error, when the receiving end is gone.
fn read_tables(dir: &Path, order: &[String], sender: &Items) -> Result<(), BackupError> {
    for table in ordered(exported_tables(dir)?, order) {
        if read_table(dir, &table, sender)?.is_break() {
            return Ok(());
        }
    }
    Ok(())
}

/// The tables `dir` holds an export of, by file name; none if `dir` does not exist (an
/// archive without tables).
fn exported_tables(dir: &Path) -> Result<Vec<String>, BackupError> {
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(BackupError::io(dir))?;
                if let Some(name) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".jsonl"))
                {
                    names.push(name.to_string());
                }
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(BackupError::io(dir)(error)),
    }
    Ok(names)
}

/// Sends `table`'s start, with the columns its header line names, then its rows in batches;
/// breaks when the receiving end is gone.
fn read_table(dir: &Path, table: &str, sender: &Items) -> Result<ControlFlow<()>, BackupError> {
    let path = dir.join(format!("{table}.jsonl"));
    let entry = format!("{TABLES_DIR}{table}.jsonl");
    let bad = |line: usize, problem: String| {
        BackupError::Failed(format!("{entry}, line {line}: {problem}"))
    };
    let file = std::fs::File::open(&path).map_err(BackupError::io(&path))?;
    let mut lines = std::io::BufReader::with_capacity(1 << 16, file).lines();
    let header: Value = match lines.next() {
        Some(line) => {
            let line = line.map_err(BackupError::io(&path))?;
            serde_json::from_str(&line).map_err(|error| bad(1, error.to_string()))?
        }
        None => return Err(bad(1, "empty; a header line was expected".to_string())),
    };
    let columns = header_columns(&header, table).ok_or_else(|| {
        bad(
            1,
            format!("expected {{\"table\": \"{table}\", \"columns\": [names]}}"),
        )
    })?;
    let width = columns.len();
    let start = Item::Table {
        name: table.to_string(),
        columns,
    };
    if sender.blocking_send(Ok(start)).is_err() {
        return Ok(ControlFlow::Break(()));
    }
    read_rows(lines, width, &path, bad, sender)
}

/// The columns a table export's `header` names, if it is the header of `table`.
fn header_columns(header: &Value, table: &str) -> Option<Vec<String>> {
    header
        .get("columns")
        .and_then(Value::as_array)
        .map(|columns| {
            columns
                .iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        // No columns: an empty table exported before the columns came from the
        // catalogue; it has no rows to load.
        .filter(|_| header.get("table") == Some(&Value::from(table)))
}

/// Sends the rows of `lines` (those after the header of the export at `path`), each an
/// array of `width` values, in batches of at most [`BATCH_ROWS`] rows or about
/// [`BATCH_BYTES`]; breaks when the receiving end is gone.
fn read_rows(
    lines: impl Iterator<Item = std::io::Result<String>>,
    width: usize,
    path: &Path,
    bad: impl Fn(usize, String) -> BackupError,
    sender: &Items,
) -> Result<ControlFlow<()>, BackupError> {
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut bytes = 0;
    for (index, line) in lines.enumerate() {
        let line = line.map_err(BackupError::io(path))?;
        bytes += line.len();
        let row = match serde_json::from_str(&line) {
            Ok(Value::Array(values)) if values.len() == width => values,
            Ok(_) => {
                return Err(bad(
                    index + 2,
                    format!("expected an array of {width} values"),
                ));
            }
            Err(error) => return Err(bad(index + 2, error.to_string())),
        };
        batch.push(row);
        if batch.len() == BATCH_ROWS || bytes >= BATCH_BYTES {
            bytes = 0;
            if sender
                .blocking_send(Ok(Item::Rows(std::mem::take(&mut batch))))
                .is_err()
            {
                return Ok(ControlFlow::Break(()));
            }
        }
    }
    if !batch.is_empty() && sender.blocking_send(Ok(Item::Rows(batch))).is_err() {
        return Ok(ControlFlow::Break(()));
    }
    Ok(ControlFlow::Continue(()))
}

/// What a column takes, so that a value from the other engine is bound as that type.
#[derive(Debug, Clone, PartialEq)]
enum Family {
    Bool,
    Int,
    Float,
    Text,
    Bytes,
    /// SQLite without a type affinity that decides: the value as it comes.
    Natural,
    /// SQLite's numeric affinity (`NUMERIC`, `DECIMAL`, `DATE`…): the value as it comes,
    /// except PostgreSQL's text for a non-finite number, which becomes that float.
    Numeric,
    /// Another PostgreSQL type: the value as text, cast in the statement.
    Cast(String),
}

impl Family {
    /// The family of a column declared `declared` on `engine` (PostgreSQL: as
    /// `format_type` prints it; SQLite: as written, decided by SQLite's affinity rules).
    fn of(engine: Engine, declared: &str) -> Family {
        match engine {
            Engine::Postgres => match declared {
                "boolean" => Family::Bool,
                "smallint" | "integer" | "bigint" => Family::Int,
                "real" | "double precision" => Family::Float,
                "text" => Family::Text,
                "bytea" => Family::Bytes,
                other if other.starts_with("character") => Family::Text,
                other => Family::Cast(other.to_string()),
            },
            Engine::Sqlite => {
                let upper = declared.to_ascii_uppercase();
                let has = |part: &str| upper.contains(part);
                if has("INT") {
                    Family::Int
                } else if has("CHAR") || has("CLOB") || has("TEXT") {
                    Family::Text
                } else if has("BLOB") || upper.trim().is_empty() {
                    Family::Natural
                } else if has("REAL") || has("FLOA") || has("DOUB") {
                    Family::Float
                } else if has("BOOL") {
                    Family::Bool
                } else {
                    Family::Numeric
                }
            }
        }
    }

    fn name(&self) -> &str {
        match self {
            Family::Bool => "boolean",
            Family::Int => "integer",
            Family::Float => "floating-point",
            Family::Text => "text",
            Family::Bytes => "bytes",
            Family::Natural => "untyped",
            Family::Numeric => "numeric",
            Family::Cast(name) => name,
        }
    }

    /// Binds `value` (portable JSON, as [`portable`] writes it) as this family's type.
    fn bind<'q>(&self, query: AnyQuery<'q>, value: &Value) -> Result<AnyQuery<'q>, String> {
        let bytes = |value: &Value| -> Option<Result<Vec<u8>, String>> {
            let text = value.as_object()?.get("base64")?.as_str()?;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|error| format!("bad base64: {error}")),
            )
        };
        let integer = |number: &serde_json::Number| {
            number.as_i64().or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
        };
        let mismatch = || {
            format!(
                "cannot store {} in a column of type {}",
                describe(value),
                self.name()
            )
        };
        Ok(match (self, value) {
            (Family::Bool, Value::Null) => query.bind(None::<bool>),
            (Family::Int, Value::Null) => query.bind(None::<i64>),
            (Family::Float, Value::Null) => query.bind(None::<f64>),
            (Family::Bytes, Value::Null) => query.bind(None::<Vec<u8>>),
            (Family::Numeric, Value::String(s)) if non_finite(s).is_some() => {
                query.bind(non_finite(s).ok_or_else(mismatch)?)
            }
            (Family::Text | Family::Natural | Family::Numeric | Family::Cast(_), Value::Null) => {
                query.bind(None::<String>)
            }
            (Family::Bool | Family::Natural | Family::Numeric, Value::Bool(b)) => query.bind(*b),
            (Family::Bool, Value::Number(n)) => match integer(n) {
                Some(0) => query.bind(false),
                Some(1) => query.bind(true),
                _ => return Err(mismatch()),
            },
            (Family::Int, Value::Number(n)) => query.bind(integer(n).ok_or_else(mismatch)?),
            (Family::Int, Value::Bool(b)) => query.bind(i64::from(*b)),
            (Family::Float, Value::Number(n)) => query.bind(n.as_f64().ok_or_else(mismatch)?),
            (Family::Float | Family::Natural | Family::Numeric, Value::Object(_))
                if special_float(value).is_some() =>
            {
                query.bind(special_float(value).ok_or_else(mismatch)?)
            }
            // The archived spelling ("NaN", "Infinity", "-Infinity") is PostgreSQL's;
            // Rust's `f64` Display ("inf") is not, and `numeric` would refuse it.
            (Family::Cast(_), Value::Object(map)) if special_float(value).is_some() => {
                query.bind(map["float"].as_str().ok_or_else(mismatch)?.to_string())
            }
            (Family::Natural | Family::Numeric, Value::Number(n)) => match n.as_i64() {
                Some(i) => query.bind(i),
                None => query.bind(n.as_f64().ok_or_else(mismatch)?),
            },
            (
                Family::Text | Family::Natural | Family::Numeric | Family::Cast(_),
                Value::String(s),
            ) => query.bind(s.clone()),
            (Family::Text | Family::Cast(_), Value::Number(n)) => query.bind(n.to_string()),
            (Family::Text | Family::Cast(_), Value::Bool(b)) => query.bind(b.to_string()),
            (Family::Bytes, Value::String(s)) => query.bind(s.as_bytes().to_vec()),
            (Family::Bytes | Family::Natural | Family::Numeric, Value::Object(_)) => {
                query.bind(bytes(value).ok_or_else(mismatch)??)
            }
            _ => return Err(mismatch()),
        })
    }
}

/// The database's complaint about rows, without the quoted value some messages carry
/// (`invalid input syntax for type uuid: "…"`): restored data may be secret.
fn without_values(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(database) => {
            let message = database.message();
            let message = message.split(": \"").next().unwrap_or(message);
            match database.code() {
                Some(code) => format!("{message} (SQLSTATE {code})"),
                None => message.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// A float JSON cannot carry (NaN, ±infinity), as [`portable`] writes it:
/// `{"float": "NaN" | "Infinity" | "-Infinity"}`.
fn special_float(value: &Value) -> Option<f64> {
    non_finite(value.as_object()?.get("float")?.as_str()?)
}

/// The float PostgreSQL (and [`portable`]) spells `name`, if it is one JSON has no number for.
fn non_finite(name: &str) -> Option<f64> {
    match name {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// `value`'s kind, for an error message (never the value: it may be a secret).
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Object(_) => "bytes",
        Value::Array(_) => "an array",
    }
}

/// A table to fill: the archive's columns and how each is bound; `None` for a generated
/// column, which the target computes.
struct Target {
    table: String,
    columns: Vec<(String, Option<Family>)>,
    engine: Engine,
}

impl Target {
    async fn describe(
        connection: &mut sqlx::AnyConnection,
        engine: Engine,
        table: &str,
        columns: &[String],
    ) -> Result<Target, BackupError> {
        // (name, declared type, generated)
        let declared: Vec<(String, String, bool)> = match engine {
            Engine::Sqlite => sqlx::query("SELECT name, type, hidden FROM pragma_table_xinfo($1)")
                .bind(table)
                .fetch_all(&mut *connection)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get::<i64, _>(2)? >= 2,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?,
            // In the current schema only: never a catalogue table of the same name.
            Engine::Postgres => sqlx::query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '' \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped",
            )
            .bind(table)
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?,
        };
        if declared.is_empty() {
            return Err(BackupError::Failed(format!(
                "the archive holds table `{table}`, which this binary's migrations do not create"
            )));
        }
        let columns = columns
            .iter()
            .map(|column| {
                let (_, declared, generated) = declared
                    .iter()
                    .find(|(name, _, _)| name == column)
                    .ok_or_else(|| {
                        BackupError::Failed(format!(
                            "the archive's column `{column}` of table `{table}` is not in this binary's schema"
                        ))
                    })?;
                Ok((
                    column.clone(),
                    (!generated).then(|| Family::of(engine, declared)),
                ))
            })
            .collect::<Result<_, BackupError>>()?;
        Ok(Target {
            table: table.to_string(),
            columns,
            engine,
        })
    }

    async fn insert(
        &self,
        connection: &mut sqlx::AnyConnection,
        rows: &[Vec<Value>],
    ) -> Result<(), BackupError> {
        let stored: Vec<(usize, &str, &Family)> = self
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, (name, family))| family.as_ref().map(|f| (i, name.as_str(), f)))
            .collect();
        if stored.is_empty() {
            return Ok(());
        }
        let names = stored
            .iter()
            .map(|(_, name, _)| quote(name))
            .collect::<Vec<_>>()
            .join(", ");
        let per_statement = (MAX_PARAMETERS / stored.len()).max(1);
        for chunk in rows.chunks(per_statement) {
            let mut sql = format!("INSERT INTO {} ({names})", quote(&self.table));
            if self.engine == Engine::Postgres {
                // The archive's identifiers win over identity columns' own.
                sql.push_str(" OVERRIDING SYSTEM VALUE");
            }
            sql.push_str(" VALUES ");
            let mut parameter = 0;
            for (r, _) in chunk.iter().enumerate() {
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for (c, (_, _, family)) in stored.iter().enumerate() {
                    parameter += 1;
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    match family {
                        Family::Cast(name) => write!(sql, "CAST(${parameter} AS {name})"),
                        _ => write!(sql, "${parameter}"),
                    }
                    .map_err(|error| BackupError::Failed(error.to_string()))?;
                }
                sql.push(')');
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                for (index, name, family) in &stored {
                    let value = row.get(*index).unwrap_or(&Value::Null);
                    query = family.bind(query, value).map_err(|problem| {
                        BackupError::Failed(format!(
                            "table `{}`, column `{name}`: {problem}",
                            self.table
                        ))
                    })?;
                }
            }
            query.execute(&mut *connection).await.map_err(|error| {
                BackupError::Failed(format!(
                    "table `{}`: the database refused the rows: {}",
                    self.table,
                    without_values(&error)
                ))
            })?;
        }
        Ok(())
    }
}

/// Moves `table`'s sequences (serial and identity columns) past the largest restored value,
/// so that the next row PostgreSQL numbers does not collide with a restored one.
async fn reset_sequences(
    connection: &mut sqlx::AnyConnection,
    table: &str,
) -> Result<(), BackupError> {
    let quoted = quote(table);
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
         AND NOT a.attisdropped AND pg_get_serial_sequence($1, a.attname::text) IS NOT NULL",
    )
    .bind(&quoted)
    .fetch_all(&mut *connection)
    .await?;
    for column in columns {
        let column_quoted = quote(&column);
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({column_quoted}), 1), MAX({column_quoted}) IS NOT NULL) FROM {quoted}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&quoted)
            .bind(&column)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// PlexiChat's tables on PostgreSQL's current schema that a restore replaces: those this
/// binary's migrations create, the migration records, and any the archive holds.
pub(crate) async fn existing_tables(
    connection: &mut sqlx::AnyConnection,
    registry: &Registry,
    manifest: &Manifest,
) -> Result<Vec<String>, BackupError> {
    let mut ours: BTreeSet<String> = tables(registry).into_iter().collect();
    ours.extend(manifest.entries.iter().filter_map(|entry| {
        entry
            .path
            .strip_prefix(TABLES_DIR)
            .and_then(|name| name.strip_suffix(".jsonl"))
            .map(str::to_string)
    }));
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    .fetch_all(&mut *connection)
    .await?;
    Ok(present.into_iter().filter(|t| ours.contains(t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_map_to_families_on_both_engines() {
        use Engine::*;
        assert_eq!(Family::of(Postgres, "bigint"), Family::Int);
        assert_eq!(Family::of(Postgres, "character varying(20)"), Family::Text);
        assert_eq!(Family::of(Postgres, "bytea"), Family::Bytes);
        assert_eq!(
            Family::of(Postgres, "timestamp with time zone"),
            Family::Cast("timestamp with time zone".to_string())
        );
        assert_eq!(Family::of(Sqlite, "BIGINT"), Family::Int);
        assert_eq!(Family::of(Sqlite, "varchar(10)"), Family::Text);
        assert_eq!(Family::of(Sqlite, "BLOB"), Family::Natural);
        assert_eq!(Family::of(Sqlite, ""), Family::Natural);
        assert_eq!(Family::of(Sqlite, "NUMERIC(10, 2)"), Family::Numeric);
        assert_eq!(Family::of(Sqlite, "DOUBLE PRECISION"), Family::Float);
        assert_eq!(Family::of(Sqlite, "BOOLEAN"), Family::Bool);
    }

    #[test]
    fn values_that_do_not_fit_their_column_are_named_without_the_value() {
        let query = || sqlx::query::<sqlx::Any>("SELECT 1");
        assert!(Family::Int.bind(query(), &Value::from(3)).is_ok());
        assert!(Family::Int.bind(query(), &Value::from(3.0)).is_ok());
        assert!(Family::Bool.bind(query(), &Value::from(1)).is_ok());
        assert!(
            Family::Bytes
                .bind(query(), &serde_json::json!({"base64": "AAE="}))
                .is_ok()
        );
        let problem = Family::Int
            .bind(query(), &Value::from("secret-value"))
            .err()
            .unwrap();
        assert_eq!(problem, "cannot store text in a column of type integer");
        assert!(Family::Bool.bind(query(), &Value::from(2)).is_err());
        assert!(
            Family::Float
                .bind(query(), &serde_json::json!({"float": "-Infinity"}))
                .is_ok()
        );
        assert!(Family::Int.bind(query(), &Value::from(2.5)).is_err());
        assert!(
            Family::Cast("numeric".into())
                .bind(query(), &serde_json::json!({"float": "Infinity"}))
                .is_ok()
        );
        assert!(
            Family::Bytes
                .bind(query(), &serde_json::json!({"base64": "not base64!"}))
                .is_err()
        );
    }

    #[test]
    fn migration_records_are_left_out_and_tables_follow_creation_order() {
        let order = vec!["b_parent".to_string(), "b_child".to_string()];
        let found = vec![
            "zzz_unknown".to_string(),
            "b_child".to_string(),
            "plexichat_migrations".to_string(),
            "b_parent".to_string(),
        ];
        assert_eq!(
            ordered(found, &order),
            vec!["b_parent", "b_child", "zzz_unknown"]
        );
    }
}
