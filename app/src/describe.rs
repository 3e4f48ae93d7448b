//! `plexichat plugins list | info` and `plexichat openapi`: what this binary contains,
//! described without starting a server, each plugin in the state the configuration starts
//! it in.

use std::io::Write;

use plexichat::info::PluginInfo;
use plexichat::{PluginStatus, Registry};
use plexichat_kernel::config::Config;

use crate::output::{buffered, write_json};
use crate::usage::UsageError;

/// Each plugin's state, by name.
pub(crate) type States = std::collections::BTreeMap<&'static str, PluginStatus>;

/// The state each plugin would start in under `config` (the server is not started).
pub(crate) fn configured_states(registry: &Registry, config: &Config) -> States {
    plexichat::state::configured(registry, config)
}

/// A plugin's description in its configured state, the same object the HTTP API serves.
fn describe(registry: &Registry, states: &States, name: &str) -> Option<PluginInfo> {
    let plugin = registry.plugin(name)?;
    let status = states.get(name).copied().unwrap_or(PluginStatus::Stopped);
    Some(PluginInfo::new(registry, plugin, status))
}

/// `plugins list`: every compiled-in plugin, as a table or JSON.
pub(crate) fn list(registry: &Registry, states: &States, json: bool) -> anyhow::Result<()> {
    buffered(|out| write_list(out, registry, states, json))
}

fn write_list(
    out: &mut impl Write,
    registry: &Registry,
    states: &States,
    json: bool,
) -> anyhow::Result<()> {
    let infos: Vec<PluginInfo> = registry
        .plugins()
        .iter()
        .filter_map(|plugin| describe(registry, states, plugin.name))
        .collect();
    if json {
        write_json(out, &infos)?;
        return Ok(());
    }
    if infos.is_empty() {
        writeln!(out, "no plugins compiled in")?;
        return Ok(());
    }
    let width = infos
        .iter()
        .map(|info| info.manifest.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    // No server is asked: the state is the one the configuration starts each plugin in, so
    // a plugin set to run reads "enabled", never "running".
    writeln!(
        out,
        "{:<width$}  {:<8}  {:<13}  {:<27}  DEPENDENCIES",
        "NAME", "VERSION", "TYPE", "CONFIGURED"
    )?;
    for info in &infos {
        let manifest = info.manifest;
        let dependencies = if manifest.dependencies.is_empty() {
            "-".to_string()
        } else {
            manifest.dependencies.join(", ")
        };
        writeln!(
            out,
            "{:<width$}  {:<8}  {:<13}  {:<27}  {dependencies}",
            manifest.name,
            manifest.version,
            manifest.kind.as_str(),
            match info.status {
                PluginStatus::Running => "enabled",
                status => status.name(),
            }
        )?;
        if !manifest.description.is_empty() {
            writeln!(out, "    {}", manifest.description)?;
        }
        write_registrations(out, info, "    ")?;
    }
    writeln!(
        out,
        "\nCONFIGURED is the state each plugin starts in with this configuration, not a server's: \
         a running server's live states are at GET /api/v1/admin/plugins."
    )?;
    write_chain(out, registry)
}

/// `plugins info`: one plugin's manifest, state and registrations, as text or JSON.
pub(crate) fn info(
    registry: &Registry,
    states: &States,
    name: &str,
    json: bool,
) -> anyhow::Result<()> {
    buffered(|out| write_info(out, registry, states, name, json))
}

fn write_info(
    out: &mut impl Write,
    registry: &Registry,
    states: &States,
    name: &str,
    json: bool,
) -> anyhow::Result<()> {
    let Some(info) = describe(registry, states, name) else {
        let known: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
        return Err(UsageError(format!(
            "unknown plugin `{name}`; compiled-in plugins: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
        .into());
    };
    if json {
        write_json(out, &info)?;
        return Ok(());
    }
    let manifest = info.manifest;
    writeln!(out, "{} {}", manifest.name, manifest.version)?;
    writeln!(out, "  {}", manifest.description)?;
    let state = info
        .status
        .reason(manifest.name)
        .unwrap_or_else(|| info.status.name().to_string());
    let fields = [
        ("state", state),
        ("type", manifest.kind.as_str().to_string()),
        ("author", manifest.author.to_string()),
        ("dependencies", manifest.dependencies.join(", ")),
        ("permissions", manifest.permissions.join(", ")),
        ("prefix", manifest.prefix.to_string()),
        ("category", manifest.category.to_string()),
        ("tags", manifest.tags.join(", ")),
        ("license", manifest.license.unwrap_or("").to_string()),
        ("webhooks", manifest.webhooks.join(", ")),
    ];
    for (label, value) in fields {
        if !value.is_empty() {
            writeln!(out, "  {label}: {value}")?;
        }
    }
    write_contents(out, &info)?;
    write_registrations(out, &info, "  ")?;
    write_chain(out, registry)
}

/// What `plugins info` lists after a plugin's fields: its permission grants, migrations,
/// tables, commands, pages, docs and backup handlers.
fn write_contents(out: &mut impl Write, info: &PluginInfo) -> anyhow::Result<()> {
    let manifest = info.manifest;
    for grant in &info.grants {
        writeln!(out, "  permission {}: {}", grant.permission, grant.grants)?;
    }
    for migration in manifest.migrations {
        let files = if migration.sqlite_file == migration.postgres_file {
            migration.sqlite_file.to_string()
        } else {
            format!(
                "{} (SQLite), {} (PostgreSQL)",
                migration.sqlite_file, migration.postgres_file
            )
        };
        writeln!(out, "  migration {}: {files}", migration.name)?;
    }
    if !info.tables.is_empty() {
        writeln!(out, "  tables: {}", info.tables.join(", "))?;
    }
    for command in &info.commands {
        writeln!(
            out,
            "  command plexichat {} {}: {}",
            command.category, command.name, command.about
        )?;
    }
    for page in &info.pages {
        writeln!(out, "  page {} ({}): {}", page.name, page.title, page.url)?;
    }
    if !info.doc_files.is_empty() {
        writeln!(out, "  docs: {}", info.doc_files.join(", "))?;
    }
    if manifest.backup.is_some() {
        writeln!(
            out,
            "  backup handlers: exports its own part into backups (handlers/{}.bin) and imports it on restore",
            manifest.name
        )?;
    }
    Ok(())
}

/// The order in which a request passes every middleware of this binary, outermost first.
fn write_chain(out: &mut impl Write, registry: &Registry) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(out, "middleware chain, outermost first:")?;
    writeln!(
        out,
        "  core     JSON error bodies, body limit, request timeout (every request)"
    )?;
    for middleware in registry.middleware() {
        let scope = match middleware.descriptor.scope {
            plexichat::middleware::MiddlewareScope::Global => "every request".to_string(),
            plexichat::middleware::MiddlewareScope::PluginRoutes => {
                format!("routes of `{}` only", middleware.plugin)
            }
        };
        let form = match middleware.descriptor.call.form() {
            plexichat::middleware::MiddlewareForm::Function => "",
            plexichat::middleware::MiddlewareForm::Layer => ", a tower layer",
        };
        writeln!(
            out,
            "  {:<8} {}::{} (priority {}; {scope}{form})",
            middleware.descriptor.scope.as_str(),
            middleware.plugin,
            middleware.descriptor.name,
            middleware.descriptor.priority,
        )?;
    }
    writeln!(
        out,
        "  core     per route: plugin not running -> 503, handler panic -> 500"
    )?;
    Ok(())
}

fn write_registrations(
    out: &mut impl Write,
    info: &PluginInfo,
    indent: &str,
) -> anyhow::Result<()> {
    for check in &info.health_checks {
        writeln!(
            out,
            "{indent}health {} check {}",
            check.kind.as_str(),
            check.name
        )?;
    }
    for sink in &info.log_sinks {
        let from = if sink.plugins.is_empty() {
            "every plugin".to_string()
        } else {
            sink.plugins.join(", ")
        };
        writeln!(
            out,
            "{indent}logs   {} ({} and above, from {from}; {} queued at most)",
            sink.name, sink.level, sink.capacity
        )?;
    }
    for test in &info.tests {
        let limits = test_limits(test.timeout_ms, test.retries);
        writeln!(
            out,
            "{indent}test   {} ({}{limits})",
            test.name,
            test.category.as_str()
        )?;
    }
    for middleware in &info.middleware {
        writeln!(
            out,
            "{indent}middleware {} ({}, priority {}, {})",
            middleware.name,
            middleware.scope.as_str(),
            middleware.priority,
            middleware.form.as_str()
        )?;
    }
    for route in &info.routes {
        writeln!(
            out,
            "{indent}route  {} {} -> {}",
            route.method, route.path, route.handler
        )?;
    }
    write_events(out, info, indent)
}

/// The event types a plugin declares and its handlers, for `write_registrations`.
fn write_events(out: &mut impl Write, info: &PluginInfo, indent: &str) -> anyhow::Result<()> {
    // The Rust type is what an author writes to subscribe; the name is what logs show.
    for event in &info.events {
        let vetoable = if event.vetoable { ", vetoable" } else { "" };
        writeln!(
            out,
            "{indent}event  {} (type {}{vetoable})",
            event.name, event.rust_type
        )?;
    }
    for handler in &info.event_handlers {
        let rust_type = handler
            .event_type
            .map(|ty| format!(" (type {ty})"))
            .unwrap_or_default();
        // A pre-handler decides before the event happens; `on` handlers see what happened.
        let (word, decides) = if handler.pre {
            ("pre   ", ", may modify or reject")
        } else {
            ("on    ", "")
        };
        writeln!(
            out,
            "{indent}{word} {}{rust_type} -> {} (priority {}{decides})",
            handler.event, handler.handler, handler.priority
        )?;
    }
    Ok(())
}

/// A plugin test's own timeout and retries, as `, timeout 5s, retries 2`; empty when it has
/// neither.
fn test_limits(timeout_ms: Option<u64>, retries: Option<u32>) -> String {
    match (timeout_ms, retries) {
        (None, None) => String::new(),
        (timeout, retries) => {
            let mut parts = Vec::new();
            if let Some(ms) = timeout {
                parts.push(format!(
                    "timeout {:?}",
                    std::time::Duration::from_millis(ms)
                ));
            }
            if let Some(retries) = retries {
                parts.push(format!("retries {retries}"));
            }
            format!(", {}", parts.join(", "))
        }
    }
}

/// `openapi`: the OpenAPI document of every route, as `GET /openapi.json` answers it.
pub(crate) fn openapi(registry: &Registry, config: &Config) -> anyhow::Result<()> {
    let document = plexichat::openapi::document(registry, config.server.metrics_bind.is_none());
    let mut out = std::io::stdout().lock();
    write_json(&mut out, &document)?;
    Ok(())
}
