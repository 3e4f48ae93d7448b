//! The seed's REST API under `/tests`, with its shapes (scripts written against them work
//! once they send the admin token): discover, run, bulk-run, schedule, schedules, results,
//! statistics and live updates.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use plexichat::info::PluginTestInfo;
use plexichat::prelude::*;
use plexichat::response::sse::{Event as SseEvent, KeepAlive, Sse};
use plexichat::tests::{
    Priority, RunRequest, RunStatus, RunnerEvent, SubmitError, Trigger, parse_priority,
};

use crate::schedule::{Schedule, from_millis, rfc3339};
use crate::stats::Statistics;
use crate::store::{self, RunFilter, ScheduleRow, StoredRun};
use crate::{Submitted, TestManager};

/// The most results one request lists.
const MAX_LIMIT: i64 = 1000;
/// How many next run times a schedule shows.
const UPCOMING: usize = 5;

/// A 400 naming the field at fault.
fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_details(json!({ "field": field }))
}

fn submit_error(error: SubmitError) -> ApiError {
    match &error {
        SubmitError::UnknownPlugin(_) => field_error("plugin_name", error.to_string()),
        SubmitError::UnknownTest { .. } => field_error("test_name", error.to_string()),
        SubmitError::NoAsyncRuntime => ApiError::internal(error),
    }
}

/// A query's failure: 503 when the database is unreachable, else a logged 500.
fn database(error: plexichat::sqlx::Error) -> ApiError {
    ApiError::from(error)
}

/// One plugin's tests, as discovery lists them.
#[payload(response)]
#[derive(Debug)]
pub struct PluginTests {
    /// The plugin.
    pub plugin_name: String,
    /// Its tests, by name.
    pub tests: Vec<PluginTestInfo>,
}

/// `POST /tests/discover`'s answer.
#[payload(response)]
#[derive(Debug)]
pub struct Discovery {
    /// Every plugin with tests, in start order.
    pub plugins: Vec<PluginTests>,
    /// How many tests there are in all.
    pub total_tests: usize,
}

/// Lists every test this binary's plugins ship: the registry is the discovery, so this
/// answers what the binary contains, nothing on disk.
#[route(POST, "/discover")]
async fn discover(context: PluginContext<TestManager>) -> Json<Discovery> {
    let plugins = context.plugins();
    let registry = plugins.registry();
    let plugins: Vec<PluginTests> = registry
        .plugins()
        .iter()
        .map(|plugin| PluginTests {
            plugin_name: plugin.name.to_string(),
            tests: registry
                .plugin_tests_of(plugin.name)
                .map(|test| PluginTestInfo::new(test.descriptor))
                .collect(),
        })
        .filter(|plugin| !plugin.tests.is_empty())
        .collect();
    let total_tests = plugins.iter().map(|plugin| plugin.tests.len()).sum();
    Json(Discovery {
        plugins,
        total_tests,
    })
}

/// `POST /tests/run`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The plugin whose tests to run.
    pub plugin_name: String,
    /// Only this test; all of the plugin's when absent.
    pub test_name: Option<String>,
    /// A time limit in seconds for each test, instead of the tests' own.
    #[schemars(range(min = 1, max = 86400))]
    pub timeout: Option<u64>,
    /// critical, high, medium (the default) or low.
    pub priority: Option<String>,
    /// Retries of a failing test, instead of the test's own count.
    #[schemars(range(max = 10))]
    pub retries: Option<u32>,
    /// Wait for the results (the default), or answer 202 at once with the queued runs.
    pub wait: Option<bool>,
}

/// A run queued (or joined) without waiting.
#[payload(response)]
#[derive(Debug)]
pub struct QueuedRun {
    /// The runner's id of the run.
    pub run_id: String,
    /// The plugin.
    pub plugin_name: String,
    /// The test.
    pub test_name: String,
    /// Whether it joined a run of the same test already queued or running.
    pub joined: bool,
}

/// What a run request answers.
#[payload(response)]
#[derive(Debug)]
pub struct RunResults {
    /// Every finished run, in test name order; empty when not waiting.
    pub results: Vec<StoredRun>,
    /// What was queued (or joined), in the same order.
    pub queued: Vec<QueuedRun>,
    /// Whether every queued run has ended and is in `results`. False when not waiting, and
    /// when the runs outlast the wait (just under `[server] request_timeout`); the answer is
    /// then 202 and the rest appear in `GET /tests/results` and the live updates.
    pub complete: bool,
    /// Whether every run ended and passed (flaky and skipped ones included).
    pub success: bool,
}

fn priority_of(field: Option<&str>) -> Result<Priority, ApiError> {
    field.map_or(Ok(Priority::Medium), |text| {
        parse_priority(text).map_err(|message| field_error("priority", message))
    })
}

fn timeout_of(seconds: Option<u64>) -> Result<Option<Duration>, ApiError> {
    match seconds {
        None => Ok(None),
        Some(seconds @ 1..=86400) => Ok(Some(Duration::from_secs(seconds))),
        Some(other) => Err(field_error(
            "timeout",
            format!("`timeout` is seconds from 1 to 86400 (got {other})"),
        )),
    }
}

/// Waits for every submitted run (or not), at most until shortly before the server's
/// request timeout would cut the answer off, and answers with what happened.
async fn answer(
    context: &PluginContext<TestManager>,
    submitted: Vec<Submitted>,
    wait: bool,
) -> (StatusCode, Json<RunResults>) {
    let queued: Vec<QueuedRun> = submitted
        .iter()
        .map(|run| QueuedRun {
            run_id: run.run_id.clone(),
            plugin_name: run.plugin.clone(),
            test_name: run.test.clone(),
            joined: run.joined,
        })
        .collect();
    let mut results = Vec::with_capacity(submitted.len());
    let mut complete = false;
    if wait {
        let timeout = context.request_timeout();
        let deadline = tokio::time::Instant::now() + timeout.saturating_sub(Duration::from_secs(2));
        complete = true;
        for run in submitted {
            match tokio::time::timeout_at(deadline, run.result()).await {
                Ok(stored) => results.push(stored),
                Err(_) => {
                    complete = false;
                    break;
                }
            }
        }
    }
    let success = complete
        && results
            .iter()
            .all(|run| RunStatus::parse(&run.status).is_some_and(RunStatus::is_ok));
    let status = if complete {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    (
        status,
        Json(RunResults {
            results,
            queued,
            complete,
            success,
        }),
    )
}

/// Runs a plugin's tests, or one of them, and answers with the stored results.
///
/// A test already queued or running is not run twice at once: the request joins that run
/// (`joined: true`) and gets its result. With `"wait": false`, or when the runs outlast the
/// request timeout, the answer is 202 with the queued runs (`complete: false`); `GET
/// /tests/results` and `GET /tests/live-updates` show how they end. Needs the admin token.
#[route(POST, "/run")]
async fn run(
    _admin: Admin,
    context: PluginContext<TestManager>,
    Json(body): Json<RunBody>,
) -> Result<(StatusCode, Json<RunResults>), ApiError> {
    let priority = priority_of(body.priority.as_deref())?;
    let timeout = timeout_of(body.timeout)?;
    if body.retries.is_some_and(|retries| retries > 10) {
        return Err(field_error("retries", "`retries` is at most 10"));
    }
    let plugins = context.plugins();
    let registry = plugins.registry();
    if registry.plugin(&body.plugin_name).is_none() {
        return Err(submit_error(SubmitError::UnknownPlugin(body.plugin_name)));
    }
    let tests: Vec<String> = match body.test_name {
        Some(test) => vec![test],
        None => registry
            .plugin_tests_of(&body.plugin_name)
            .map(|test| test.descriptor.name.to_string())
            .collect(),
    };
    let mut submitted = Vec::with_capacity(tests.len());
    for test in tests {
        let request = RunRequest::new(body.plugin_name.clone(), test)
            .priority(priority)
            .trigger(Trigger::Manual)
            .timeout(timeout)
            .retries(body.retries);
        submitted.push(crate::submit(&context, request, None).map_err(submit_error)?);
    }
    Ok(answer(&context, submitted, body.wait.unwrap_or(true)).await)
}

/// `POST /tests/bulk-run`'s body: a list of plugin names, or an object with one.
#[payload(request)]
#[derive(Debug)]
#[serde(untagged)]
pub enum BulkBody {
    /// `["a", "b"]`, as the seed sends it.
    Names(Vec<String>),
    /// `{"plugin_names": ["a", "b"], "priority": "high", "wait": false}`.
    Options {
        /// The plugins whose tests to run.
        plugin_names: Vec<String>,
        /// critical, high, medium (the default) or low.
        priority: Option<String>,
        /// Wait for the results (the default).
        wait: Option<bool>,
    },
}

/// Runs every test of several plugins; each plugin name must exist. Needs the admin token.
#[route(POST, "/bulk-run")]
async fn bulk_run(
    _admin: Admin,
    context: PluginContext<TestManager>,
    Json(body): Json<BulkBody>,
) -> Result<(StatusCode, Json<RunResults>), ApiError> {
    let (names, priority, wait) = match body {
        BulkBody::Names(names) => (names, None, None),
        BulkBody::Options {
            plugin_names,
            priority,
            wait,
        } => (plugin_names, priority, wait),
    };
    if names.is_empty() {
        return Err(field_error("plugin_names", "name at least one plugin"));
    }
    // A name given twice runs its tests once: what a request fans out to is bounded by the
    // tests compiled in, however long the list.
    let mut seen = std::collections::HashSet::new();
    let names: Vec<String> = names
        .into_iter()
        .filter(|name| seen.insert(name.clone()))
        .collect();
    let priority = priority_of(priority.as_deref())?;
    let plugins = context.plugins();
    let registry = plugins.registry();
    if let Some(unknown) = names.iter().find(|name| registry.plugin(name).is_none()) {
        return Err(field_error(
            "plugin_names",
            format!("no plugin `{unknown}` in this binary"),
        ));
    }
    let mut submitted = Vec::new();
    for name in &names {
        for test in registry.plugin_tests_of(name) {
            let request = RunRequest::new(name.clone(), test.descriptor.name)
                .priority(priority)
                .trigger(Trigger::Bulk);
            submitted.push(crate::submit(&context, request, None).map_err(submit_error)?);
        }
    }
    Ok(answer(&context, submitted, wait.unwrap_or(true)).await)
}

/// `POST /tests/schedule`'s body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// The plugin.
    pub plugin_name: String,
    /// Only this test; all of the plugin's tests when absent or null.
    pub test_name: Option<String>,
    /// `hourly`, `daily`, `weekly`, `every_<N>_minutes|hours|days`, or five-field cron.
    pub schedule_expression: String,
    /// The IANA time zone the expression is read in; UTC when absent.
    pub timezone: Option<String>,
    /// critical, high, medium (the default) or low.
    pub priority: Option<String>,
    /// A time limit in seconds for each run, instead of the tests' own.
    pub timeout: Option<u64>,
    /// Whether it runs (the default) or starts paused.
    pub enabled: Option<bool>,
}

/// A schedule as the API shows it.
#[payload(response)]
#[derive(Debug)]
pub struct ScheduleView {
    /// Its id, for `DELETE /tests/schedule/{id}`.
    pub id: i64,
    /// The plugin.
    pub plugin_name: String,
    /// The test; null runs all of the plugin's tests.
    pub test_name: Option<String>,
    /// The expression, as given.
    pub schedule_expression: String,
    /// The time zone it is read in.
    pub timezone: String,
    /// The runs' priority.
    pub priority: String,
    /// The runs' time limit in seconds, if it overrides the tests' own.
    pub timeout: Option<i64>,
    /// Whether it runs (false: paused).
    pub enabled: bool,
    /// When it runs next (RFC 3339, UTC); null when paused.
    pub next_run_at: Option<String>,
    /// Its next run times, computed by the server.
    pub next_runs: Vec<String>,
    /// When it last ran.
    pub last_run_at: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

pub(crate) fn view_of(row: &ScheduleRow) -> ScheduleView {
    let next_runs = match (
        row.enabled,
        Schedule::parse(&row.expression, Some(&row.timezone)),
    ) {
        (true, Ok(schedule)) => {
            let after = from_millis(row.next_run_ms.map_or_else(crate::now_ms, |ms| ms - 1));
            schedule
                .upcoming(after, from_millis(row.anchor_ms), UPCOMING)
                .into_iter()
                .map(rfc3339)
                .collect()
        }
        _ => Vec::new(),
    };
    ScheduleView {
        id: row.id,
        plugin_name: row.plugin.clone(),
        test_name: row.test.clone(),
        schedule_expression: row.expression.clone(),
        timezone: row.timezone.clone(),
        priority: row.priority.clone(),
        timeout: row.timeout_ms.map(|ms| ms / 1000),
        enabled: row.enabled,
        next_run_at: row
            .next_run_ms
            .filter(|_| row.enabled)
            .map(|ms| rfc3339(from_millis(ms))),
        next_runs,
        last_run_at: row.last_run_ms.map(|ms| rfc3339(from_millis(ms))),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

/// Schedules a plugin's tests (or one test): 201 with the schedule, its id and its next run
/// times. An expression outside the grammar is a 400 saying what is accepted; nothing is
/// ever turned into "hourly". Needs the admin token.
#[route(POST, "/schedule")]
async fn create_schedule(
    _admin: Admin,
    context: PluginContext<TestManager>,
    Json(body): Json<ScheduleBody>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    crate::check_test(
        context.plugins().registry(),
        &body.plugin_name,
        body.test_name.as_deref(),
    )
    .map_err(submit_error)?;
    let schedule = Schedule::parse(&body.schedule_expression, body.timezone.as_deref()).map_err(
        |message| {
            let field = if message.contains("time zone") {
                "timezone"
            } else {
                "schedule_expression"
            };
            field_error(field, message)
        },
    )?;
    let priority = priority_of(body.priority.as_deref())?;
    let timeout = timeout_of(body.timeout)?;
    let mut row = crate::new_schedule(
        &schedule,
        &body.schedule_expression,
        body.plugin_name,
        body.test_name,
        priority,
        timeout,
        body.enabled.unwrap_or(true),
    );
    row.id = store::insert_schedule(context.db().pool(), &row)
        .await
        .map_err(database)?;
    let view = view_of(&row);
    announce(&context, "created", &view);
    Ok((StatusCode::CREATED, Json(view)))
}

fn announce(context: &PluginContext<TestManager>, change: &str, view: &ScheduleView) {
    if let Some(manager) = context.instance() {
        manager.schedule_changed(json!({
            "type": "schedule_changed",
            "schedule_id": view.id,
            "change": change,
            "schedule": view,
        }));
    }
}

async fn find(context: &PluginContext<TestManager>, id: i64) -> Result<ScheduleRow, ApiError> {
    store::schedule(context.db().pool(), id)
        .await
        .map_err(database)?
        .ok_or_else(|| ApiError::not_found(format!("no schedule {id}")))
}

/// Deletes a schedule: 204, or 404 when there is none with that id. Runs it started stay in
/// the history. Needs the admin token.
#[route(DELETE, "/schedule/{id}")]
async fn delete_schedule(
    _admin: Admin,
    context: PluginContext<TestManager>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let row = find(&context, id).await?;
    store::delete_schedule(context.db().pool(), id)
        .await
        .map_err(database)?;
    announce(&context, "deleted", &view_of(&row));
    Ok(StatusCode::NO_CONTENT)
}

/// Pauses a schedule: it keeps its settings and runs no more until resumed. Needs the admin
/// token.
#[route(POST, "/schedule/{id}/pause")]
async fn pause_schedule(
    _admin: Admin,
    context: PluginContext<TestManager>,
    Path(id): Path<i64>,
) -> Result<Json<ScheduleView>, ApiError> {
    switch(&context, id, false).await
}

/// Resumes a paused schedule from its next time after now. Needs the admin token.
#[route(POST, "/schedule/{id}/resume")]
async fn resume_schedule(
    _admin: Admin,
    context: PluginContext<TestManager>,
    Path(id): Path<i64>,
) -> Result<Json<ScheduleView>, ApiError> {
    switch(&context, id, true).await
}

async fn switch(
    context: &PluginContext<TestManager>,
    id: i64,
    enabled: bool,
) -> Result<Json<ScheduleView>, ApiError> {
    let mut row = find(context, id).await?;
    let next = enabled
        .then(|| crate::scheduler::next_after_now(&row))
        .flatten();
    let now = plexichat::timestamp();
    store::set_enabled(context.db().pool(), id, enabled, next, &now)
        .await
        .map_err(database)?;
    row.enabled = enabled;
    row.next_run_ms = next;
    row.updated_at = now;
    let view = view_of(&row);
    announce(context, if enabled { "resumed" } else { "paused" }, &view);
    Ok(Json(view))
}

/// `GET /tests/schedules`' query.
#[payload(request)]
#[derive(Debug)]
pub struct ScheduleListQuery {
    /// How many, by id: 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// Only schedules with an id above this one: the previous page's `next_after`.
    pub after: Option<i64>,
}

/// `GET /tests/schedules`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct ScheduleList {
    /// One page of schedules, by id.
    pub schedules: Vec<ScheduleView>,
    /// The `after` of the next page; null on the last one.
    pub next_after: Option<i64>,
}

/// The most schedules one request lists: each carries its next run times, computed per
/// request.
const MAX_SCHEDULES: i64 = 500;

/// Schedules with their next run times, a page at a time (`?after=` the previous page's
/// `next_after`).
#[route(GET, "/schedules")]
async fn list_schedules(
    context: PluginContext<TestManager>,
    Query(query): Query<ScheduleListQuery>,
) -> Result<Json<ScheduleList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_SCHEDULES).contains(&limit) {
        return Err(field_error(
            "limit",
            format!("`limit` must be between 1 and {MAX_SCHEDULES} (got {limit})"),
        ));
    }
    // One more than asked tells whether there is a next page.
    let mut rows = store::schedules_page(context.db().pool(), query.after.unwrap_or(0), limit + 1)
        .await
        .map_err(database)?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Json(ScheduleList {
        next_after: more.then(|| rows.last().map(|row| row.id)).flatten(),
        schedules: rows.iter().map(view_of).collect(),
    }))
}

/// `GET /tests/schedule/preview`'s query.
#[payload(request)]
#[derive(Debug)]
pub struct PreviewQuery {
    /// The expression to try.
    pub schedule_expression: String,
    /// Its time zone; UTC when absent.
    pub timezone: Option<String>,
}

/// `GET /tests/schedule/preview`'s answer.
#[payload(response)]
#[derive(Debug)]
pub struct Preview {
    /// The next run times a schedule created now would have.
    pub next_runs: Vec<String>,
}

/// The next run times an expression would produce if scheduled now (what the dashboard's
/// form shows before saving); 400 with what is accepted when it is not in the grammar.
#[route(GET, "/schedule/preview")]
async fn preview(Query(query): Query<PreviewQuery>) -> Result<Json<Preview>, ApiError> {
    let schedule = Schedule::parse(&query.schedule_expression, query.timezone.as_deref())
        .map_err(|message| field_error("schedule_expression", message))?;
    let now = jiff::Timestamp::now();
    Ok(Json(Preview {
        next_runs: schedule
            .upcoming(now, now, UPCOMING)
            .into_iter()
            .map(rfc3339)
            .collect(),
    }))
}

/// `GET /tests/results`' query.
#[payload(request)]
#[derive(Debug)]
pub struct ResultsQuery {
    /// Only this plugin's runs.
    pub plugin_name: Option<String>,
    /// Only this test's runs.
    pub test_name: Option<String>,
    /// How many, newest first: 1 to 1000 (default 100).
    pub limit: Option<i64>,
    /// Only runs that ended so: passed, failed, error, timeout, flaky or skipped.
    pub status: Option<String>,
}

/// `GET /tests/results`' answer.
#[payload(response)]
#[derive(Debug)]
pub struct ResultList {
    /// The runs, newest first.
    pub results: Vec<StoredRun>,
}

/// Stored runs, newest first, by plugin, test and status.
#[route(GET, "/results")]
async fn results(
    context: PluginContext<TestManager>,
    Query(query): Query<ResultsQuery>,
) -> Result<Json<ResultList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(field_error(
            "limit",
            format!("`limit` must be between 1 and {MAX_LIMIT} (got {limit})"),
        ));
    }
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            field_error(
                "status",
                format!("unknown status `{text}`; expected one of: passed, failed, error, timeout, flaky, skipped"),
            )
        })?),
    };
    if let Some(plugin) = &query.plugin_name
        && context.plugins().descriptor(plugin).is_none()
    {
        return Err(submit_error(SubmitError::UnknownPlugin(plugin.clone())));
    }
    let filter = RunFilter {
        plugin: query.plugin_name,
        test: query.test_name,
        status,
        limit,
    };
    let results = store::runs(context.db().pool(), &filter)
        .await
        .map_err(database)?;
    Ok(Json(ResultList { results }))
}

/// Success rates, counts, duration percentiles and status changes per test, per plugin and
/// overall, over the latest 100,000 runs. Computed once per change of the stored runs, off
/// the server's async workers, one computation at a time: a request that comes while one
/// runs gets the last statistics computed instead of waiting, so a flood of requests costs
/// one computation.
#[route(GET, "/statistics")]
async fn statistics(
    context: PluginContext<TestManager>,
    manager: PluginState<TestManager>,
) -> Result<Json<Statistics>, ApiError> {
    let last = || {
        manager
            .statistics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map(|cached| (cached.span, std::sync::Arc::clone(&cached.value)))
    };
    let _computing = match manager.computing_statistics.try_lock() {
        Ok(turn) => turn,
        Err(_) => match last() {
            Some((_, value)) => return Ok(Json(Statistics::clone(&value))),
            None => manager.computing_statistics.lock().await,
        },
    };
    let db = context.db();
    let pool = db.pool();
    let span = store::runs_span(pool).await.map_err(database)?;
    if let Some((computed_over, value)) = last()
        && computed_over == span
    {
        return Ok(Json(Statistics::clone(&value)));
    }
    let facts = store::facts(pool).await.map_err(database)?;
    let value = tokio::task::spawn_blocking(move || crate::stats::compute(&facts))
        .await
        .map_err(ApiError::internal)?;
    let value = std::sync::Arc::new(value);
    *manager
        .statistics
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(crate::stats::Cached {
        span,
        value: std::sync::Arc::clone(&value),
    });
    Ok(Json(Statistics::clone(&value)))
}

/// Live updates as Server-Sent Events: `queued`, `started` and `finished` runs and
/// `schedule_changed`, each with a JSON body; a client that falls behind gets `lagged` with
/// how many it missed. Comments keep the connection alive every 15 seconds.
#[route(GET, "/live-updates")]
async fn live_updates(
    context: PluginContext<TestManager>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let runs = context.tests().subscribe();
    let changes = context
        .instance()
        .map(|manager| manager.changes().subscribe());
    let runs = stream::unfold(runs, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => runner_event(&event),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => SseEvent::default()
                .event("lagged")
                .data(json!({ "missed": missed }).to_string()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    let changes = stream::unfold(changes, |receiver| async move {
        let mut receiver = receiver?;
        let event = match receiver.recv().await {
            Ok(change) => SseEvent::default()
                .event("schedule_changed")
                .data(change.to_string()),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => SseEvent::default()
                .event("lagged")
                .data(json!({ "missed": missed }).to_string()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), Some(receiver)))
    });
    let hello = stream::once(async {
        Ok(SseEvent::default()
            .event("hello")
            .data(json!({ "retry_ms": 3000 }).to_string()))
    });
    Sse::new(hello.chain(stream::select(runs, changes)))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn runner_event(event: &RunnerEvent) -> SseEvent {
    let name = match event {
        RunnerEvent::Queued { .. } => "queued",
        RunnerEvent::Started { .. } => "started",
        RunnerEvent::Finished { .. } => "finished",
    };
    let data = match event {
        RunnerEvent::Finished { run } => json!({
            "type": "finished",
            "run": crate::stored_view(run, 0, None),
        }),
        other => plexichat::serde_json::to_value(other).unwrap_or_default(),
    };
    SseEvent::default().event(name).data(data.to_string())
}
