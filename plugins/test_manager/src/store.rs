//! The test manager's tables, on either engine: every finished run (`test_manager_runs`) and
//! the schedules (`test_manager_schedules`). Times are stored twice where they are compared:
//! as Unix milliseconds to order and select, as RFC 3339 text to show.

use plexichat::prelude::*;
use plexichat::sqlx::{self, AnyPool, Row, any::AnyRow};
use plexichat::tests::{RunStatus, TestRun};

/// One stored run, as the API answers it.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRun {
    /// The row's id.
    pub id: i64,
    /// The runner's id of the run.
    pub run_id: String,
    /// The plugin.
    pub plugin_name: String,
    /// The test.
    pub test_name: String,
    /// The test's category.
    pub category: String,
    /// passed, failed, error, timeout, flaky or skipped.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last attempt's duration in milliseconds.
    pub duration_ms: i64,
    /// From the first attempt's start to the end, in milliseconds.
    pub total_ms: i64,
    /// What happened, in one line.
    pub message: String,
    /// The failure's text, if it did not pass.
    pub error: Option<String>,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// manual, schedule, bulk or cli.
    pub trigger: String,
    /// critical, high, medium or low.
    pub priority: String,
    /// Whether a synchronous test's thread was left running past its time limit.
    pub abandoned: bool,
    /// The schedule that started it, if one did.
    pub schedule_id: Option<i64>,
}

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunFilter {
    /// Only this plugin's.
    pub plugin: Option<String>,
    /// Only this test's.
    pub test: Option<String>,
    /// Only runs that ended so.
    pub status: Option<RunStatus>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// The columns a [`StoredRun`] is read from, as a literal for `concat!`: every statement
/// stays a literal, with bound parameters only.
macro_rules! run_columns {
    () => {
        "id, run_id, plugin, test, category, status, attempts, duration_ms, total_ms, message, error, started_at, finished_at, trigger_kind, priority, abandoned, schedule_id"
    };
}

/// Stores a finished run; returns its row id.
pub(crate) async fn insert_run(
    pool: &AnyPool,
    run: &TestRun,
    schedule_id: Option<i64>,
) -> Result<i64, sqlx::Error> {
    let started_ms =
        crate::schedule::parse_time(&run.started_at).map_or(0, |time| time.as_millisecond());
    let row = sqlx::query(
        "INSERT INTO test_manager_runs (run_id, plugin, test, category, status, attempts, duration_ms, total_ms, message, error, started_at, started_ms, finished_at, trigger_kind, priority, abandoned, schedule_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
    )
    .bind(&run.id)
    .bind(&run.plugin)
    .bind(&run.test)
    .bind(run.category.as_str())
    .bind(run.status.as_str())
    .bind(i64::from(run.attempts))
    .bind(saturating(run.duration_ms))
    .bind(saturating(run.total_ms))
    .bind(&run.message)
    .bind(run.error.as_deref())
    .bind(&run.started_at)
    .bind(started_ms)
    .bind(&run.finished_at)
    .bind(run.trigger.as_str())
    .bind(run.priority.as_str())
    .bind(i64::from(run.abandoned))
    .bind(schedule_id)
    .fetch_one(pool)
    .await?;
    row.try_get(0)
}

fn saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn stored_run(row: &AnyRow) -> Result<StoredRun, sqlx::Error> {
    Ok(StoredRun {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        plugin_name: row.try_get("plugin")?,
        test_name: row.try_get("test")?,
        category: row.try_get("category")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        duration_ms: row.try_get("duration_ms")?,
        total_ms: row.try_get("total_ms")?,
        message: row.try_get("message")?,
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        trigger: row.try_get("trigger_kind")?,
        priority: row.try_get("priority")?,
        abandoned: row.try_get::<i64, _>("abandoned")? != 0,
        schedule_id: row.try_get("schedule_id")?,
    })
}

/// Runs matching `filter`, newest first.
pub(crate) async fn runs(
    pool: &AnyPool,
    filter: &RunFilter,
) -> Result<Vec<StoredRun>, sqlx::Error> {
    // Every condition is always present; an absent filter matches everything.
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM test_manager_runs \
         WHERE ($1 IS NULL OR plugin = $1) AND ($2 IS NULL OR test = $2) AND ($3 IS NULL OR status = $3) \
         ORDER BY started_ms DESC, id DESC LIMIT $4"
    ))
        .bind(filter.plugin.as_deref())
        .bind(filter.test.as_deref())
        .bind(filter.status.map(RunStatus::as_str))
        .bind(filter.limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(stored_run).collect()
}

/// What statistics need of one run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunFact {
    /// The plugin.
    pub plugin: String,
    /// The test.
    pub test: String,
    /// How it ended.
    pub status: String,
    /// The last attempt's duration.
    pub duration_ms: i64,
    /// When it started.
    pub started_at: String,
}

/// How many of the latest runs statistics cover.
pub(crate) const STATISTICS_RUNS: i64 = 100_000;

/// The latest [`STATISTICS_RUNS`] stored runs, oldest first per test: what statistics are
/// computed from.
pub(crate) async fn facts(pool: &AnyPool) -> Result<Vec<RunFact>, sqlx::Error> {
    // The latest runs only, so that one anonymous request cannot make the server load a
    // history of any size; then in the order the statistics read them.
    let rows = sqlx::query(
        "SELECT plugin, test, status, duration_ms, started_at, started_ms, id FROM \
         (SELECT plugin, test, status, duration_ms, started_at, started_ms, id FROM test_manager_runs ORDER BY id DESC LIMIT $1) AS latest \
         ORDER BY plugin, test, started_ms, id",
    )
    .bind(STATISTICS_RUNS)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RunFact {
                plugin: row.try_get("plugin")?,
                test: row.try_get("test")?,
                status: row.try_get("status")?,
                duration_ms: row.try_get("duration_ms")?,
                started_at: row.try_get("started_at")?,
            })
        })
        .collect()
}

/// Deletes runs that started before `older_than_ms`, then all but the newest `keep` runs;
/// returns how many rows went.
pub(crate) async fn prune(
    pool: &AnyPool,
    older_than_ms: i64,
    keep: i64,
) -> Result<u64, sqlx::Error> {
    let aged = sqlx::query("DELETE FROM test_manager_runs WHERE started_ms < $1")
        .bind(older_than_ms)
        .execute(pool)
        .await?
        .rows_affected();
    // The id of the newest run beyond `keep`; NULL (nothing deleted) when there are fewer.
    let counted = sqlx::query(
        "DELETE FROM test_manager_runs WHERE id <= (SELECT id FROM test_manager_runs ORDER BY id DESC LIMIT 1 OFFSET $1)",
    )
    .bind(keep)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(aged + counted)
}

/// One stored schedule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ScheduleRow {
    /// Its id.
    pub id: i64,
    /// The plugin.
    pub plugin: String,
    /// The test; `None` runs all of the plugin's tests.
    pub test: Option<String>,
    /// The expression, as given.
    pub expression: String,
    /// The time zone, an IANA name.
    pub timezone: String,
    /// The runs' priority.
    pub priority: String,
    /// The runs' time limit, if it overrides the tests' own.
    pub timeout_ms: Option<i64>,
    /// Paused when false.
    pub enabled: bool,
    /// When it began: what `every_<N>_…` counts from.
    pub anchor_ms: i64,
    /// When it runs next; `None` when paused or never again.
    pub next_run_ms: Option<i64>,
    /// When it last ran.
    pub last_run_ms: Option<i64>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// The columns a [`ScheduleRow`] is read from, as a literal for `concat!`.
macro_rules! schedule_columns {
    () => {
        "id, plugin, test, expression, timezone, priority, timeout_ms, enabled, anchor_ms, next_run_ms, last_run_ms, created_at, updated_at"
    };
}

fn schedule_row(row: &AnyRow) -> Result<ScheduleRow, sqlx::Error> {
    Ok(ScheduleRow {
        id: row.try_get("id")?,
        plugin: row.try_get("plugin")?,
        test: row.try_get("test")?,
        expression: row.try_get("expression")?,
        timezone: row.try_get("timezone")?,
        priority: row.try_get("priority")?,
        timeout_ms: row.try_get("timeout_ms")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        anchor_ms: row.try_get("anchor_ms")?,
        next_run_ms: row.try_get("next_run_ms")?,
        last_run_ms: row.try_get("last_run_ms")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Stores a new schedule (its `id` is ignored); returns its id.
pub(crate) async fn insert_schedule(
    pool: &AnyPool,
    schedule: &ScheduleRow,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO test_manager_schedules (plugin, test, expression, timezone, priority, timeout_ms, enabled, anchor_ms, next_run_ms, last_run_ms, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(&schedule.plugin)
    .bind(schedule.test.as_deref())
    .bind(&schedule.expression)
    .bind(&schedule.timezone)
    .bind(&schedule.priority)
    .bind(schedule.timeout_ms)
    .bind(i64::from(schedule.enabled))
    .bind(schedule.anchor_ms)
    .bind(schedule.next_run_ms)
    .bind(schedule.last_run_ms)
    .bind(&schedule.created_at)
    .bind(&schedule.updated_at)
    .fetch_one(pool)
    .await?;
    row.try_get(0)
}

/// Every schedule, by id.
pub(crate) async fn schedules(pool: &AnyPool) -> Result<Vec<ScheduleRow>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        schedule_columns!(),
        " FROM test_manager_schedules ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(schedule_row).collect()
}

/// At most `limit` schedules with an id above `after`, by id: one page of the list.
pub(crate) async fn schedules_page(
    pool: &AnyPool,
    after: i64,
    limit: i64,
) -> Result<Vec<ScheduleRow>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        schedule_columns!(),
        " FROM test_manager_schedules WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(schedule_row).collect()
}

/// The lowest and highest run ids stored: they change whenever a run is stored or pruned
/// (by this process or another on the same database), so statistics computed for one pair
/// are current while it holds. Two index lookups.
pub(crate) async fn runs_span(pool: &AnyPool) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COALESCE(MIN(id), 0) AS low, COALESCE(MAX(id), 0) AS high FROM test_manager_runs",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.try_get("low")?, row.try_get("high")?))
}

/// One schedule.
pub(crate) async fn schedule(pool: &AnyPool, id: i64) -> Result<Option<ScheduleRow>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        schedule_columns!(),
        " FROM test_manager_schedules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(schedule_row).transpose()
}

/// Enabled schedules due at `now_ms`, the most overdue first.
pub(crate) async fn due(pool: &AnyPool, now_ms: i64) -> Result<Vec<ScheduleRow>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        schedule_columns!(),
        " FROM test_manager_schedules WHERE enabled = 1 AND next_run_ms IS NOT NULL AND next_run_ms <= $1 ORDER BY next_run_ms, id"
    ))
    .bind(now_ms)
    .fetch_all(pool)
    .await?;
    rows.iter().map(schedule_row).collect()
}

/// When the next enabled schedule is due.
pub(crate) async fn next_due_ms(pool: &AnyPool) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT MIN(next_run_ms) FROM test_manager_schedules WHERE enabled = 1 AND next_run_ms IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    row.try_get(0)
}

/// Deletes a schedule; whether it existed.
pub(crate) async fn delete_schedule(pool: &AnyPool, id: i64) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM test_manager_schedules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Pauses or resumes a schedule with its next run time; whether it existed.
pub(crate) async fn set_enabled(
    pool: &AnyPool,
    id: i64,
    enabled: bool,
    next_run_ms: Option<i64>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE test_manager_schedules SET enabled = $1, next_run_ms = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(i64::from(enabled))
    .bind(next_run_ms)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated > 0)
}

/// Where one schedule goes after a pass of the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Advance {
    /// The schedule.
    pub(crate) id: i64,
    /// Its next run time as read: the claim holds only if nobody changed it since.
    pub(crate) expected_ms: Option<i64>,
    /// When it runs next.
    pub(crate) next_run_ms: Option<i64>,
    /// When it ran now; `None` when a missed run was skipped.
    pub(crate) last_run_ms: Option<i64>,
}

/// Stores every advance of one scheduler pass in one transaction, each only if the schedule's
/// next run time is still the expected one; returns, in order, which were claimed.
pub(crate) async fn claim_all(
    pool: &AnyPool,
    advances: &[Advance],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let mut claimed = Vec::with_capacity(advances.len());
    for advance in advances {
        let updated = sqlx::query(
            "UPDATE test_manager_schedules SET next_run_ms = $1, last_run_ms = COALESCE($2, last_run_ms) \
             WHERE id = $3 AND enabled = 1 AND next_run_ms = $4",
        )
        .bind(advance.next_run_ms)
        .bind(advance.last_run_ms)
        .bind(advance.id)
        .bind(advance.expected_ms)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        claimed.push(updated == 1);
    }
    transaction.commit().await?;
    Ok(claimed)
}
