//! `plexichat db status | migrate`: every migration's state, or the pending ones applied,
//! without serving.

use std::io::Write;

use plexichat::Registry;
use plexichat_kernel::config::Config;
use plexichat_kernel::runtime::Runtime;

use crate::output::write_json;
use crate::setup::{block_on, open_storage};

/// `db status`: a table (or JSON) of every migration's state.
pub(crate) fn status(registry: Registry, config: Config, json: bool) -> anyhow::Result<()> {
    use plexichat_kernel::storage::migrate::MigrationState;
    let report = block_on(async {
        let storage = open_storage(&config).await?;
        let url = storage.database().url().to_string();
        let engine = storage.database().engine();
        let runtime = Runtime::with_storage(registry, config, None, storage);
        Ok((runtime.migration_status().await?, url, engine))
    })?;
    let (report, url, engine) = report;
    let broken = report.iter().any(|plugin| {
        plugin.count(MigrationState::Changed) + plugin.count(MigrationState::Vanished) > 0
    });
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({ "database": url, "engine": engine, "plugins": report });
        write_json(&mut out, &value)?;
    } else {
        writeln!(out, "database: {url} ({engine})")?;
        for plugin in &report {
            let counts = [
                MigrationState::Applied,
                MigrationState::Pending,
                MigrationState::Changed,
                MigrationState::Vanished,
            ]
            .map(|state| plugin.count(state));
            writeln!(
                out,
                "{}: {} applied, {} pending{}{}",
                plugin.plugin,
                counts[0],
                counts[1],
                if counts[2] > 0 {
                    format!(", {} CHANGED", counts[2])
                } else {
                    String::new()
                },
                if counts[3] > 0 {
                    format!(", {} VANISHED", counts[3])
                } else {
                    String::new()
                },
            )?;
            for migration in &plugin.migrations {
                let state = serde_json::to_value(migration.state)?;
                writeln!(
                    out,
                    "  {:<8} {} {}",
                    state.as_str().unwrap_or_default(),
                    migration.name,
                    &migration.checksum[..12.min(migration.checksum.len())]
                )?;
            }
        }
    }
    if broken {
        anyhow::bail!("some applied migrations were changed or removed since; see above");
    }
    Ok(())
}

/// `db migrate`: applies what is pending and says what ran.
pub(crate) fn migrate(registry: Registry, config: Config) -> anyhow::Result<()> {
    let report = block_on(async {
        let storage = open_storage(&config).await?;
        let url = storage.database().url().to_string();
        let runtime = Runtime::with_storage(registry, config, None, storage);
        let report = runtime.migrate().await?;
        Ok((report, url))
    })?;
    let (report, url) = report;
    if report.applied.is_empty() {
        println!("{url}: nothing to apply; every migration is applied");
    } else {
        println!("{url}: applied {} migrations:", report.applied.len());
        for (plugin, name) in &report.applied {
            println!("  {plugin}: {name}");
        }
    }
    Ok(())
}
