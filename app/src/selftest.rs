//! `plexichat plugins self-test [NAME [TEST]]`: the plugins' own tests, run in-process
//! against the configured database and data folder with every plugin started as a server
//! would start it, without a socket. Exit 1 if any test failed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use plexichat::Registry;
use plexichat::tests::Selection;
use plexichat_kernel::runtime::Runtime;

use crate::setup::{block_on, load_config, open_storage};
use crate::usage::UsageError;

/// What the command line asked for.
pub(crate) struct SelfTest {
    pub(crate) plugin: Option<String>,
    pub(crate) test: Option<String>,
    pub(crate) config: Option<PathBuf>,
    pub(crate) json: bool,
    pub(crate) junit: Option<PathBuf>,
}

pub(crate) fn run(registry: Registry, request: SelfTest) -> anyhow::Result<()> {
    if let Some(plugin) = &request.plugin
        && registry.plugin(plugin).is_none()
    {
        let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
        return Err(UsageError(format!(
            "no plugin `{plugin}` in this binary; its plugins: {}",
            names.join(", ")
        ))
        .into());
    }
    let config = load_config(&registry, request.config.as_deref())?;
    let selection = Selection::from_args(request.plugin.clone(), request.test.clone());
    let _lock = crate::setup::share_data(&config, "run the tests")?;
    let report = block_on(async {
        let storage = open_storage(&config).await?;
        let database = storage.database().clone();
        let runtime = Runtime::with_storage(registry, config, None, storage);
        let result = async {
            runtime
                .migrate()
                .await
                .context("refusing to run the tests")?;
            plexichat::tests::run_in_process(&runtime, &selection)
                .await
                .map_err(|error| anyhow::Error::from(UsageError(error.to_string())))
        }
        .await;
        database.shut_down().await;
        database.close().await;
        result
    })?;
    for failure in &report.init_failures {
        eprintln!(
            "warning: plugin `{}` failed to start ({}); its tests are skipped",
            failure.plugin, failure.error
        );
    }
    write_results(&report.runs, request.json, request.junit.as_deref())?;
    if plexichat::tests::should_fail(&report) {
        let failed = report.runs.iter().filter(|run| !run.status.is_ok()).count();
        anyhow::bail!(
            "{failed} of {} tests failed, {} plugins did not start",
            report.runs.len(),
            report.init_failures.len()
        );
    }
    Ok(())
}

/// The results as a table or JSON on standard output, and as JUnit XML into `junit`.
pub(crate) fn write_results(
    runs: &[plexichat::tests::TestRun],
    json: bool,
    junit: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(path) = junit {
        std::fs::write(path, plexichat::tests::junit(runs))
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        crate::output::write_json(&mut out, runs)?;
    } else if runs.is_empty() {
        writeln!(out, "no tests selected")?;
    } else {
        out.write_all(plexichat::tests::table(runs).as_bytes())?;
    }
    Ok(())
}
