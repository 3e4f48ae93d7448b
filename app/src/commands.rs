//! Plugins' CLI commands (`#[plexichat::command]`): their place in the clap tree, the checks
//! their flags ask for, and running one on the configured storage.
//!
//! Only the category asked for is built in full: `plexichat --help` lists every category
//! from the registry without calling any command's argument builder, so a binary with
//! thousands of commands starts as fast as one with none.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Arg, ArgAction, ArgMatches};
use plexichat::command::{CommandDescriptor, CommandError, CommandFlags, Invocation};
use plexichat::{PluginStatus, Registry};
use plexichat_kernel::config::Config;
use plexichat_kernel::config::secret::Secret;
use plexichat_kernel::registry::ResolvedCommand;
use plexichat_kernel::runtime::{Runtime, behind};

use crate::usage::UsageError;

/// The ids of the options every plugin command has; prefixed so that they cannot collide
/// with a plugin's own argument ids.
const CONFIG: &str = "plexichat-config";
const SERVER: &str = "plexichat-server";
const TOKEN: &str = "plexichat-token-0123456789-0123456789ab";
const YES: &str = "plexichat-yes";
/// Their long names, which a plugin's own arguments must not use.
const TOKEN_FILE: &str = "plexichat-token-file";
const COMMON: [&str; 5] = ["config", "server", "token", "token-file", "yes"];

/// `base` (the core commands) with every plugin command category: in full for the one
/// `argv` asks for, as a one-line entry for the others.
pub(crate) fn tree(
    base: clap::Command,
    registry: &Registry,
    argv: &[OsString],
) -> anyhow::Result<clap::Command> {
    // `plexichat awesome …`, or `plexichat help awesome …`.
    let word = |index: usize| argv.get(index).and_then(|word| word.to_str());
    let asked = match word(1) {
        Some("help") => word(2),
        first => first,
    };
    let mut command = base;
    let mut categories: Vec<&str> = registry.commands().iter().map(|c| c.category).collect();
    categories.dedup();
    for category in categories {
        command = command.subcommand(if Some(category) == asked {
            full_category(registry, category)?
        } else {
            category_entry(registry, category)
        });
    }
    Ok(command)
}

/// The category as `plexichat --help` lists it.
fn category_entry(registry: &Registry, category: &'static str) -> clap::Command {
    let plugins: BTreeSet<&str> = registry.commands_in(category).map(|c| c.plugin).collect();
    let plugins: Vec<&str> = plugins.into_iter().collect();
    clap::Command::new(category).about(format!(
        "Commands of plugin{} {}",
        if plugins.len() == 1 { "" } else { "s" },
        plugins.join(", ")
    ))
}

/// The category with every command and its arguments.
fn full_category(registry: &Registry, category: &'static str) -> anyhow::Result<clap::Command> {
    let mut command = category_entry(registry, category)
        .subcommand_required(true)
        .arg_required_else_help(true);
    for resolved in registry.commands_in(category) {
        command = command.subcommand(one_command(registry, resolved)?);
    }
    Ok(command)
}

/// One command: its own arguments, its help from the doc comment and the manifest, and the
/// options every plugin command has.
fn one_command(registry: &Registry, resolved: &ResolvedCommand) -> anyhow::Result<clap::Command> {
    let descriptor = resolved.descriptor;
    let command = (descriptor.args)(clap::Command::new(descriptor.name));
    for argument in command.get_arguments() {
        if let Some(long) = argument.get_long()
            && COMMON.contains(&long)
        {
            anyhow::bail!(
                "command `plexichat {} {}` of plugin `{}` ({}) defines `--{long}`, which every plugin command has; rename its argument",
                resolved.category,
                descriptor.name,
                resolved.plugin,
                descriptor.location
            );
        }
    }
    let command = command
        .about(descriptor.about)
        .long_about(descriptor.long_about)
        .after_help(help_footer(registry, resolved));
    Ok(with_common_options(command, descriptor.flags))
}

/// The end of a command's help: the plugin and version it comes from, and a note for each
/// of its flags.
fn help_footer(registry: &Registry, resolved: &ResolvedCommand) -> String {
    let descriptor = resolved.descriptor;
    let version = registry
        .plugin(resolved.plugin)
        .map_or("", |plugin| plugin.version);
    let flags = descriptor.flags;
    let mut notes = Vec::new();
    if flags.dangerous {
        notes.push("Dangerous: asks for confirmation on a terminal; pass --yes otherwise.");
    }
    if flags.admin_only {
        notes.push(
            "Admin only: needs the admin token (--token, PLEXICHAT_ADMIN_TOKEN, [server] admin_token, or the data folder's admin_token file).",
        );
    }
    if flags.requires_auth {
        notes.push("Acts on a running server with credentials: needs --server and a token.");
    } else if flags.server {
        notes.push("Acts on a running server: needs --server.");
    }
    if flags.starts_plugins {
        notes.push(
            "Starts the plugins: every enabled plugin runs its init, without scheduled jobs, before the command runs, and stops after.",
        );
    }
    let mut footer = format!(
        "Provided by plugin `{}` {version}, since {}.",
        resolved.plugin,
        descriptor.since.unwrap_or(version)
    );
    for note in notes {
        footer.push('\n');
        footer.push_str(note);
    }
    footer
}

/// `command` with the options every plugin command has (`--config`, `--token`, `--yes`),
/// and `--server` when it acts on a server.
fn with_common_options(command: clap::Command, flags: CommandFlags) -> clap::Command {
    let command = if flags.server {
        command.arg(
            Arg::new(SERVER)
                .long("server")
                .value_name("URL")
                .value_parser(parse_server)
                .help("A running server to act on, e.g. http://127.0.0.1:8000")
                .help_heading("PlexiChat options"),
        )
    } else {
        command
    };
    command
        .arg(
            Arg::new(CONFIG)
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Configuration file [default: plexichat.toml if it exists, else built-in defaults]")
                .help_heading("PlexiChat options"),
        )
        .arg(
            Arg::new(TOKEN)
                .long("token")
                .value_name("TOKEN")
                .help("The admin token; other users see it in `ps`, so prefer --token-file or PLEXICHAT_ADMIN_TOKEN [default: PLEXICHAT_ADMIN_TOKEN, [server] admin_token, or <data>/admin_token]")
                .conflicts_with(TOKEN_FILE)
                .help_heading("PlexiChat options"),
        )
        .arg(
            Arg::new(TOKEN_FILE)
                .long("token-file")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Read the admin token from FILE (its first line), out of sight of `ps`")
                .help_heading("PlexiChat options"),
        )
        .arg(
            Arg::new(YES)
                .long("yes")
                .action(ArgAction::SetTrue)
                .help("Do not ask for confirmation")
                .help_heading("PlexiChat options"),
        )
}

fn parse_server(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| format!("not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected http://HOST:PORT or https://HOST".to_string());
    }
    Ok(url)
}

/// Whether `category` is a plugin command category of `registry`.
pub(crate) fn is_category(registry: &Registry, category: &str) -> bool {
    registry.commands_in(category).next().is_some()
}

/// Runs the command `matches` names in `category`: its flags' checks, then its function on
/// the configured storage with every pending migration applied.
pub(crate) fn run(registry: Registry, category: &str, matches: &ArgMatches) -> anyhow::Result<()> {
    let Some((name, matches)) = matches.subcommand() else {
        return Err(UsageError(format!(
            "`plexichat {category}` needs a command; see `plexichat {category} --help`"
        ))
        .into());
    };
    let resolved = registry
        .commands_in(category)
        .find(|c| c.descriptor.name == name)
        .cloned()
        .with_context(|| format!("no command `{name}` in `{category}`"))?;
    let full = format!("plexichat {category} {name}");
    let config = crate::setup::load_config(
        &registry,
        matches.get_one::<PathBuf>(CONFIG).map(PathBuf::as_path),
    )?;
    let invocation = invocation(&full, resolved.descriptor, matches, &config)?;

    // Shared with servers, exclusive for a restore: no command runs on data being replaced.
    let _lock = crate::setup::share_data(&config, "run the command")?;
    crate::setup::block_on(async move {
        let storage = crate::setup::open_storage(&config).await?;
        let database = storage.database().clone();
        let runtime = Runtime::with_storage(registry, config, None, storage);
        let result = run_on(&runtime, &resolved, invocation, matches, &full).await;
        database.shut_down().await;
        database.close().await;
        result
    })
}

/// What the command is run with (`--server`, the token, `--yes`), once its flags' checks
/// pass: credentials as `admin_only` and `requires_auth` demand, and for a dangerous command
/// a confirmation.
fn invocation(
    full: &str,
    descriptor: &CommandDescriptor,
    matches: &ArgMatches,
    config: &Config,
) -> anyhow::Result<Invocation> {
    // Only a command that acts on a server has the option at all.
    let server = matches
        .try_get_one::<url::Url>(SERVER)
        .ok()
        .flatten()
        .cloned();
    // What the caller presents: `--token`, else `PLEXICHAT_ADMIN_TOKEN`. What it is checked
    // against on this machine: the data folder's token file, else a token the configuration
    // file sets (one that came from that same variable would be checked against itself).
    let from_environment = std::env::var(plexichat_kernel::config::ENV_ADMIN_TOKEN)
        .ok()
        .filter(|token| !token.is_empty());
    let from_file = match matches.get_one::<PathBuf>(TOKEN_FILE) {
        Some(path) => Some(read_token_file(path)?),
        None => None,
    };
    let given = matches
        .get_one::<String>(TOKEN)
        .cloned()
        .or(from_file)
        .or_else(|| from_environment.clone())
        .map(|token| Secret::new(token.as_str()));
    let configured = config
        .server
        .admin_token
        .clone()
        .filter(|_| from_environment.is_none());
    let (stored, token_file) = plexichat_kernel::storage::data_dir::read_token(&config.data.dir)?;
    let admin = stored.or(configured);
    let token = given.clone().or_else(|| admin.clone());
    check_credentials(
        full,
        descriptor.flags,
        given.as_ref(),
        admin.as_ref(),
        server.is_some(),
        &token_file,
    )
    .map_err(UsageError)?;
    let yes = matches.get_flag(YES);
    if descriptor.flags.dangerous && !yes {
        confirm(full, descriptor.about)?;
    }
    Ok(Invocation { server, token, yes })
}

/// The first line of `--token-file`'s file; an unreadable or empty file is the operator's to
/// fix (exit 2).
fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| UsageError(format!("--token-file {}: {error}", path.display())))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return Err(UsageError(format!(
            "--token-file {}: the file is empty; write the admin token on its first line",
            path.display()
        ))
        .into());
    }
    Ok(token)
}

/// Runs the command on `runtime`, once its plugin is known to run and every migration is
/// applied; starts the plugins around it if it asks for them.
async fn run_on(
    runtime: &Runtime,
    resolved: &ResolvedCommand,
    invocation: Invocation,
    matches: &ArgMatches,
    full: &str,
) -> anyhow::Result<()> {
    match runtime.status(resolved.plugin) {
        Some(PluginStatus::Stopped) => {}
        Some(status) => {
            let reason = status
                .reason(resolved.plugin)
                .unwrap_or_else(|| status.name().to_string());
            return Err(UsageError(format!(
                "plugin `{}` does not run with this configuration ({reason}), so its commands do not either",
                resolved.plugin
            ))
            .into());
        }
        None => anyhow::bail!("plugin `{}` is not compiled in", resolved.plugin),
    }
    runtime
        .migrate()
        .await
        .context("refusing to run the command")?;
    let descriptor = resolved.descriptor;
    // The arguments are read now, so a bad one is refused before any plugin starts.
    let command = (descriptor.run)(behind::host(runtime.clone()), invocation, matches);
    let starts_plugins = descriptor.flags.starts_plugins;
    if starts_plugins {
        // A command runs what it was asked for; scheduled jobs are the server's.
        runtime.without_scheduled_jobs();
        runtime.start().await;
    }
    let outcome = command.await;
    if starts_plugins {
        runtime.shutdown().await;
    }
    outcome.map_err(|error| match error {
        CommandError::Usage(message) => UsageError(message).into(),
        CommandError::Failed(error) => anyhow::anyhow!("`{full}` failed: {error}"),
    })
}

/// What `admin_only` and `requires_auth` demand: `given` is `--token`, `admin` the admin
/// token of the configuration or the data folder (`token_file`). A refusal says what to do.
fn check_credentials(
    full: &str,
    flags: plexichat::command::CommandFlags,
    given: Option<&Secret>,
    admin: Option<&Secret>,
    server: bool,
    token_file: &std::path::Path,
) -> Result<(), String> {
    if flags.admin_only {
        match (given, admin) {
            (None, None) => {
                return Err(format!(
                    "`{full}` is admin-only and no admin token was found: pass --token, set PLEXICHAT_ADMIN_TOKEN, or run it as the user who owns {} (a server writes it at its first start)",
                    token_file.display()
                ));
            }
            // Run locally, the token is checked here; on a server, the server checks it. A
            // local comparison leaks nothing to time: whoever runs this can read the file.
            (Some(given), Some(admin)) if !server && given.expose() != admin.expose() => {
                return Err(format!(
                    "`{full}` is admin-only and the token given (--token or PLEXICHAT_ADMIN_TOKEN) is not this data directory's admin token ({})",
                    token_file.display()
                ));
            }
            _ => {}
        }
    }
    if flags.requires_auth && (!server || (given.is_none() && admin.is_none())) {
        return Err(format!(
            "`{full}` acts on a running server with credentials: pass --server http://HOST:PORT and a token (--token, or PLEXICHAT_ADMIN_TOKEN)"
        ));
    }
    Ok(())
}

/// Asks on the terminal whether to run a dangerous command; without a terminal, refuses.
fn confirm(full: &str, about: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "`{full}` is marked dangerous ({about}); pass --yes to run it without a terminal"
        ))
        .into());
    }
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "`{full}`: {about}\nThis command is marked dangerous. Type `yes` to go on: "
    )?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        anyhow::bail!("cancelled; nothing was done")
    }
}

/// `commands list`: every plugin command, by category and name.
pub(crate) fn list(registry: &Registry, json: bool) -> anyhow::Result<()> {
    crate::output::buffered(|out| write_list(out, registry, json))
}

fn write_list(out: &mut impl Write, registry: &Registry, json: bool) -> anyhow::Result<()> {
    let infos: Vec<serde_json::Value> = registry
        .commands()
        .iter()
        .map(|resolved| {
            let version = registry
                .plugin(resolved.plugin)
                .map_or("", |plugin| plugin.version);
            let info = plexichat::info::CommandInfo::new(resolved, version);
            let mut value = serde_json::to_value(&info).unwrap_or_default();
            value["plugin"] = resolved.plugin.into();
            value
        })
        .collect();
    if json {
        crate::output::write_json(out, &infos)?;
        return Ok(());
    }
    if infos.is_empty() {
        writeln!(out, "no plugin commands in this binary")?;
        return Ok(());
    }
    let width = registry
        .commands()
        .iter()
        .map(|c| c.category.len() + 1 + c.descriptor.name.len())
        .max()
        .unwrap_or(0);
    for resolved in registry.commands() {
        let flags = resolved.descriptor.flags;
        let marks: Vec<&str> = [
            (flags.admin_only, "admin-only"),
            (flags.dangerous, "dangerous"),
            (flags.requires_auth, "requires-auth"),
            (flags.server && !flags.requires_auth, "server"),
            (flags.starts_plugins, "starts-plugins"),
        ]
        .into_iter()
        .filter_map(|(on, mark)| on.then_some(mark))
        .collect();
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!(" [{}]", marks.join(", "))
        };
        writeln!(
            out,
            "{:width$}  {:20}  {}{marks}",
            format!("{} {}", resolved.category, resolved.descriptor.name),
            resolved.plugin,
            resolved.descriptor.about,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexichat::command::CommandFlags;

    #[test]
    fn credentials_as_the_flags_demand() {
        let file = std::path::Path::new("/srv/data/admin_token");
        let (good, bad) = (Secret::new("good"), Secret::new("bad"));
        let admin_only = CommandFlags {
            admin_only: true,
            ..CommandFlags::default()
        };
        let requires_auth = CommandFlags {
            requires_auth: true,
            ..CommandFlags::default()
        };
        let check = |flags, given, admin, server| {
            check_credentials("plexichat x y", flags, given, admin, server, file)
        };
        // No flags: nothing is needed.
        assert_eq!(check(CommandFlags::default(), None, None, false), Ok(()));
        // Admin only: some admin token, and locally the right one.
        let refused = check(admin_only, None, None, false).unwrap_err();
        assert!(
            refused.contains("no admin token was found")
                && refused.contains("/srv/data/admin_token"),
            "{refused}"
        );
        assert_eq!(check(admin_only, None, Some(&good), false), Ok(()));
        assert_eq!(check(admin_only, Some(&good), Some(&good), false), Ok(()));
        let refused = check(admin_only, Some(&bad), Some(&good), false).unwrap_err();
        assert!(
            refused.contains("not this data directory's admin token"),
            "{refused}"
        );
        assert_eq!(
            check(admin_only, Some(&bad), Some(&good), true),
            Ok(()),
            "the server decides"
        );
        assert_eq!(check(admin_only, Some(&bad), None, true), Ok(()));
        // Requires auth: a server and a token.
        assert!(
            check(requires_auth, Some(&good), None, false)
                .unwrap_err()
                .contains("--server")
        );
        assert!(check(requires_auth, None, None, true).is_err());
        assert_eq!(check(requires_auth, None, Some(&good), true), Ok(()));
        assert_eq!(check(requires_auth, Some(&good), None, true), Ok(()));
    }
}
