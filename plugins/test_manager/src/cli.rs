//! `plexichat tests …`: list the tests a binary ships, run them in-process (exit 1 if any
//! failed, with a JUnit report for CI), and manage schedules and read the history in the
//! configured database, with or without a server running on it.

use std::path::PathBuf;
use std::time::Duration;

use plexichat::command::UsageError;
use plexichat::prelude::*;
use plexichat::tests::{Priority, RunRequest, RunStatus, Trigger, parse_priority};

use crate::TestManager;
use crate::schedule::{Schedule, from_millis, rfc3339};
use crate::store::{self, RunFilter};

/// Options of `plexichat tests list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only this plugin's tests.
    pub plugin: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists every test this binary's plugins ship, with its category, limits and tags.
#[plexichat::command(category = "tests", name = "list", since = "0.1.0")]
async fn list_tests(context: CommandContext<TestManager>, args: ListArgs) -> Result<(), BoxError> {
    let plugins = context.plugins();
    let registry = plugins.registry();
    if let Some(plugin) = &args.plugin
        && registry.plugin(plugin).is_none()
    {
        return Err(UsageError(format!("no plugin `{plugin}` in this binary")).into());
    }
    let tests: Vec<_> = registry
        .plugin_tests()
        .iter()
        .filter(|test| {
            args.plugin
                .as_deref()
                .is_none_or(|plugin| test.plugin == plugin)
        })
        .collect();
    if args.json {
        let listed: Vec<Value> = tests
            .iter()
            .map(|test| {
                let mut info = plexichat::serde_json::to_value(
                    plexichat::info::PluginTestInfo::new(test.descriptor),
                )
                .unwrap_or_default();
                info["plugin_name"] = json!(test.plugin);
                info
            })
            .collect();
        println!("{}", plexichat::serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    for test in &tests {
        let descriptor = test.descriptor;
        let summary = descriptor
            .doc
            .split("\n\n")
            .next()
            .unwrap_or("")
            .replace('\n', " ");
        println!(
            "{}::{}  [{}{}]  {}",
            test.plugin,
            descriptor.name,
            descriptor.category.as_str(),
            if descriptor.is_async() { "" } else { ", sync" },
            summary
        );
    }
    println!("{} tests", tests.len());
    Ok(())
}

/// Options of `plexichat tests run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Only this plugin's tests.
    pub plugin: Option<String>,
    /// Only this test of the plugin.
    pub test: Option<String>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs tests in-process, without a server: every enabled plugin starts (its `init`, without
/// scheduled jobs) on the configured database and data folder, the selected tests run, and the
/// plugins stop.
/// Results are stored in the history (trigger `cli`). Exits 1 if any test failed, so CI can
/// run it; `--junit FILE` writes a report CI systems read.
#[plexichat::command(
    category = "tests",
    name = "run",
    since = "0.1.0",
    starts_plugins = true
)]
async fn run_tests(context: CommandContext<TestManager>, args: RunArgs) -> Result<(), BoxError> {
    let plugins = context.plugins();
    let registry = plugins.registry();
    let requests: Vec<RunRequest> = match (&args.plugin, &args.test) {
        (None, _) => registry
            .plugin_tests()
            .iter()
            .map(|test| RunRequest::new(test.plugin, test.descriptor.name))
            .collect(),
        (Some(plugin), test) => {
            crate::check_test(registry, plugin, test.as_deref())
                .map_err(|error| UsageError(error.to_string()))?;
            match test {
                Some(test) => vec![RunRequest::new(plugin.clone(), test.clone())],
                None => registry
                    .plugin_tests_of(plugin)
                    .map(|known| RunRequest::new(plugin.clone(), known.descriptor.name))
                    .collect(),
            }
        }
    };
    // The framework started the plugins (`starts_plugins`), without the schedules: they are
    // the server's. Tests that call admin routes present the token a server on this folder
    // would use.
    context.tests().use_configured_server();
    let failures = context.start_failures();
    for failure in &failures {
        eprintln!(
            "warning: plugin `{}` failed to start ({}); its tests are skipped",
            failure.plugin, failure.error
        );
    }
    let mut submitted = Vec::with_capacity(requests.len());
    let mut errors = Vec::new();
    for request in requests {
        match crate::submit(&context, request.trigger(Trigger::Cli), None) {
            Ok(run) => submitted.push(run),
            Err(error) => errors.push(error.to_string()),
        }
    }
    let (mut runs, mut stored) = (Vec::new(), Vec::new());
    for submitted in submitted {
        let (run, row) = submitted.finished().await;
        runs.push(run);
        stored.push(row);
    }
    if !errors.is_empty() {
        return Err(errors.join("; ").into());
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, plexichat::tests::junit(&runs))
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    if args.json {
        println!("{}", plexichat::serde_json::to_string_pretty(&stored)?);
    } else {
        print!("{}", plexichat::tests::table(&runs));
    }
    let failed = runs.iter().filter(|run| !run.status.is_ok()).count();
    if failed > 0 || !failures.is_empty() {
        return Err(format!(
            "{failed} of {} tests failed, {} plugins did not start",
            runs.len(),
            failures.len()
        )
        .into());
    }
    Ok(())
}

/// Options of `plexichat tests results`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResultsArgs {
    /// Only this plugin's runs.
    #[arg(long)]
    pub plugin: Option<String>,
    /// Only this test's runs.
    #[arg(long)]
    pub test: Option<String>,
    /// Only runs that ended so: passed, failed, error, timeout, flaky, skipped.
    #[arg(long, value_parser = ["passed", "failed", "error", "timeout", "flaky", "skipped"])]
    pub status: Option<String>,
    /// How many, newest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Shows stored test runs, newest first, from the configured database.
#[plexichat::command(category = "tests", name = "results", since = "0.1.0")]
async fn show_results(
    context: CommandContext<TestManager>,
    args: ResultsArgs,
) -> Result<(), BoxError> {
    let filter = RunFilter {
        plugin: args.plugin,
        test: args.test,
        status: args.status.as_deref().and_then(RunStatus::parse),
        limit: args.limit,
    };
    let runs = store::runs(context.db().pool(), &filter).await?;
    if args.json {
        println!("{}", plexichat::serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    for run in &runs {
        println!(
            "{}  {:<8} {}::{}  {} ms  ({}) {}",
            run.started_at,
            run.status,
            run.plugin_name,
            run.test_name,
            run.duration_ms,
            run.trigger,
            if run.status == "passed" {
                ""
            } else {
                run.message.as_str()
            }
        );
    }
    if runs.is_empty() {
        println!("no stored runs match");
    }
    Ok(())
}

/// Options of `plexichat tests schedule`.
#[derive(Debug, clap::Args)]
pub(crate) struct ScheduleArgs {
    #[command(subcommand)]
    action: ScheduleAction,
}

#[derive(Debug, clap::Subcommand)]
enum ScheduleAction {
    /// List every schedule with its next run time.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a schedule; a server on this database picks it up within 30 seconds.
    Add {
        /// The plugin whose tests to run.
        plugin: String,
        /// Only this test (all of the plugin's when absent).
        #[arg(long)]
        test: Option<String>,
        /// `hourly`, `daily`, `weekly`, `every_<N>_minutes|hours|days`, or five-field cron.
        #[arg(long = "every", value_name = "EXPRESSION")]
        expression: String,
        /// The IANA time zone the expression is read in.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// critical, high, medium or low.
        #[arg(long, default_value = "medium", value_parser = ["critical", "high", "medium", "low"])]
        priority: String,
        /// A time limit in seconds per run, instead of the tests' own.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86400))]
        timeout: Option<u64>,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
    },
    /// Delete a schedule.
    Delete {
        /// Its id, as `tests schedule list` shows it.
        id: i64,
    },
    /// Pause a schedule.
    Pause {
        /// Its id.
        id: i64,
    },
    /// Resume a paused schedule from its next time after now.
    Resume {
        /// Its id.
        id: i64,
    },
}

/// Lists, adds, deletes, pauses and resumes test schedules in the configured database.
#[plexichat::command(category = "tests", name = "schedule", since = "0.1.0")]
async fn manage_schedules(
    context: CommandContext<TestManager>,
    args: ScheduleArgs,
) -> Result<(), BoxError> {
    let db = context.db();
    let pool = db.pool();
    match args.action {
        ScheduleAction::List { json } => {
            let rows = store::schedules(pool).await?;
            if json {
                let views: Vec<_> = rows.iter().map(crate::api::view_of).collect();
                println!("{}", plexichat::serde_json::to_string_pretty(&views)?);
                return Ok(());
            }
            for row in &rows {
                let next = match (row.enabled, row.next_run_ms) {
                    (false, _) => "paused".to_string(),
                    (true, Some(ms)) => format!("next {}", rfc3339(from_millis(ms))),
                    (true, None) => "never again".to_string(),
                };
                println!(
                    "{:>4}  {}::{}  `{}` ({})  {}  {next}",
                    row.id,
                    row.plugin,
                    row.test.as_deref().unwrap_or("*"),
                    row.expression,
                    row.timezone,
                    row.priority,
                );
            }
            if rows.is_empty() {
                println!("no schedules");
            }
        }
        ScheduleAction::Add {
            plugin,
            test,
            expression,
            timezone,
            priority,
            timeout,
            paused,
        } => {
            crate::check_test(context.plugins().registry(), &plugin, test.as_deref())
                .map_err(|error| UsageError(error.to_string()))?;
            let schedule = Schedule::parse(&expression, Some(&timezone))
                .map_err(|message| UsageError(format!("--every: {message}")))?;
            let priority: Priority = parse_priority(&priority).map_err(UsageError)?;
            let mut row = crate::new_schedule(
                &schedule,
                &expression,
                plugin,
                test,
                priority,
                timeout.map(Duration::from_secs),
                !paused,
            );
            row.id = store::insert_schedule(pool, &row).await?;
            let view = crate::api::view_of(&row);
            println!(
                "schedule {} created; next runs: {}",
                row.id,
                if view.next_runs.is_empty() {
                    "none (paused)".to_string()
                } else {
                    view.next_runs.join(", ")
                }
            );
        }
        ScheduleAction::Delete { id } => {
            if !store::delete_schedule(pool, id).await? {
                return Err(UsageError(format!(
                    "no schedule {id}; see `plexichat tests schedule list`"
                ))
                .into());
            }
            println!("schedule {id} deleted");
        }
        ScheduleAction::Pause { id } => switch(pool, id, false).await?,
        ScheduleAction::Resume { id } => switch(pool, id, true).await?,
    }
    Ok(())
}

/// Pauses or resumes schedule `id`.
async fn switch(pool: &plexichat::sqlx::AnyPool, id: i64, enabled: bool) -> Result<(), BoxError> {
    let row = store::schedule(pool, id).await?.ok_or_else(|| {
        UsageError(format!(
            "no schedule {id}; see `plexichat tests schedule list`"
        ))
    })?;
    let next = enabled
        .then(|| crate::scheduler::next_after_now(&row))
        .flatten();
    store::set_enabled(pool, id, enabled, next, &plexichat::timestamp()).await?;
    println!(
        "schedule {id} {}",
        if enabled { "resumed" } else { "paused" }
    );
    Ok(())
}
