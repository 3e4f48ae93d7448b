//! `plexichat config check | schema | example`: the configuration checked, described or
//! generated, starting nothing.

use std::path::Path;

use plexichat::Registry;
use plexichat_kernel::config::{self, Config, ConfigFile};

use crate::output::write_json;
use crate::setup::environment;
use crate::usage::UsageError;

/// `config check`: validates the configuration with the environment's overrides, and says
/// what it checked.
pub(crate) fn check(registry: &Registry, file: Option<&Path>) -> anyhow::Result<()> {
    let located = ConfigFile::locate(file);
    let environment = environment();
    let config = Config::load(&located, &environment, &[], registry)
        .map_err(|errors| UsageError(errors.to_string()))?;
    let configured: Vec<&str> = config.plugin_values.keys().copied().collect();
    let overrides: Vec<&str> = environment
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with(config::ENV_PREFIX) || *name == config::ENV_ADMIN_TOKEN)
        .collect();
    let directory = std::env::current_dir().unwrap_or_default();
    println!(
        "{}",
        check_report(&located, &directory, &overrides, &configured)
    );
    Ok(())
}

/// `config schema`: the JSON Schema of the configuration for this binary's plugins.
pub(crate) fn schema(registry: &Registry) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    write_json(&mut out, &config::schema(registry))?;
    Ok(())
}

/// `config example`: a complete, commented configuration with every default.
pub(crate) fn example(registry: &Registry) -> anyhow::Result<()> {
    print!("{}", config::example(registry));
    Ok(())
}

/// What `config check` prints for a valid configuration: what it checked (the file, or the
/// built-in defaults and where it looked for a file), the environment variables that
/// overrode it, and the plugins with settings.
fn check_report(
    file: &ConfigFile,
    directory: &Path,
    overrides: &[&str],
    configured: &[&str],
) -> String {
    let overridden = if overrides.is_empty() {
        String::new()
    } else {
        format!(" (with overrides from {})", overrides.join(", "))
    };
    let checked = match file {
        ConfigFile::Given(path) | ConfigFile::Found(path) => {
            format!("{} is valid{overridden}", path.display())
        }
        ConfigFile::None => format!(
            "the built-in defaults are valid{overridden}; no file was given and there is no {}",
            directory.join(config::DEFAULT_FILE).display()
        ),
    };
    let configured = if configured.is_empty() {
        "none".to_string()
    } else {
        configured.join(", ")
    };
    format!("ok: {checked}; configured plugins: {configured}")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// `(file, overrides, report)`.
    #[test]
    fn check_reports_as_a_table() {
        let check = |file: ConfigFile, overrides: &[&str], expect: &str| {
            let report = check_report(
                &file,
                Path::new("/srv/chat"),
                overrides,
                &["my_awesome_plugin"],
            );
            assert_eq!(report, expect, "{file:?}");
        };
        check(
            ConfigFile::None,
            &[],
            "ok: the built-in defaults are valid; no file was given and there is no \
             /srv/chat/plexichat.toml; configured plugins: my_awesome_plugin",
        );
        check(
            ConfigFile::None,
            &["PLEXICHAT__SERVER__BIND"],
            "ok: the built-in defaults are valid (with overrides from PLEXICHAT__SERVER__BIND); \
             no file was given and there is no /srv/chat/plexichat.toml; configured plugins: \
             my_awesome_plugin",
        );
        check(
            ConfigFile::Found(PathBuf::from("plexichat.toml")),
            &[],
            "ok: plexichat.toml is valid; configured plugins: my_awesome_plugin",
        );
        check(
            ConfigFile::Given(PathBuf::from("/etc/plexichat.toml")),
            &["PLEXICHAT_ADMIN_TOKEN"],
            "ok: /etc/plexichat.toml is valid (with overrides from PLEXICHAT_ADMIN_TOKEN); \
             configured plugins: my_awesome_plugin",
        );
    }
}
