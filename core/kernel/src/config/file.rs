//! Finding and reading the configuration file (and the settings saved from the admin page,
//! `<data>/settings.toml`), at start and on a reload: the only I/O of the configuration.

use std::path::PathBuf;

use crate::registry::Registry;

use super::{Config, ConfigErrors, ConfigIssue, Flag};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "plexichat.toml";
/// What messages call the configuration when there is no file: the built-in defaults with
/// whatever the environment and the command line override.
const NO_FILE: &str = "the configuration (built-in defaults, no file)";

/// Where the configuration file is, decided once at start so that a reload reads the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    /// `--config PATH`: it must exist.
    Given(PathBuf),
    /// [`DEFAULT_FILE`] in the working directory, which existed at start.
    Found(PathBuf),
    /// No file: the built-in defaults and the environment.
    None,
}

/// Largest configuration file read; a larger one is refused before it is parsed.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

impl ConfigFile {
    /// `given`, else [`DEFAULT_FILE`] if it exists, else none.
    pub fn locate(given: Option<&std::path::Path>) -> ConfigFile {
        match given {
            Some(path) => ConfigFile::Given(path.to_path_buf()),
            None if std::path::Path::new(DEFAULT_FILE).exists() => {
                ConfigFile::Found(PathBuf::from(DEFAULT_FILE))
            }
            None => ConfigFile::None,
        }
    }

    /// The file's text and its name for messages; `None` when there is no file. On a
    /// reload, a file that went missing or empty is an error: the server keeps its
    /// configuration rather than silently falling back to the built-in defaults.
    fn read(&self, reloading: bool) -> Result<Option<(String, String)>, ConfigErrors> {
        let (ConfigFile::Given(path) | ConfigFile::Found(path)) = self else {
            return Ok(None);
        };
        let source = path.display().to_string();
        let fail = |problem: String| ConfigErrors {
            source: source.clone(),
            issues: vec![ConfigIssue::new("", None, problem)],
        };
        let text = read_limited(path).map_err(fail)?;
        if reloading && text.trim().is_empty() {
            return Err(fail(
                "the file is empty; refusing to replace the running configuration with the \
                 built-in defaults (write at least a comment if that is what you want)"
                    .to_string(),
            ));
        }
        Ok(Some((text, source)))
    }
}

/// Reads at most [`MAX_FILE_BYTES`] of a regular file.
fn read_limited(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking, so that a FIFO in the file's place cannot hang start-up before the
    // "regular file" check below.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options
        .open(path)
        .map_err(|error| format!("cannot read the file: {error}"))?;
    let metadata = file
        .metadata()
        .map_err(|error| format!("cannot read the file: {error}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".to_string());
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|error| format!("cannot read the file: {error}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {MAX_FILE_BYTES} bytes; a configuration is a few kilobytes"
        ));
    }
    Ok(text)
}

impl Config {
    /// Reads `file` and parses it with `env` and `flags`. The only I/O is reading that one
    /// file, at most [`MAX_FILE_BYTES`] of it; a file that cannot be read is reported like
    /// any other problem.
    pub fn load(
        file: &ConfigFile,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
    ) -> Result<Config, ConfigErrors> {
        Config::read_and_parse(file, false, env, flags, registry)
    }

    /// Like [`Config::load`] for a running server: the file chosen at start must still be
    /// there and not be empty.
    pub fn reload(
        file: &ConfigFile,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
    ) -> Result<Config, ConfigErrors> {
        Config::read_and_parse(file, true, env, flags, registry)
    }

    fn read_and_parse(
        file: &ConfigFile,
        reloading: bool,
        env: &[(String, String)],
        flags: &[Flag],
        registry: &Registry,
    ) -> Result<Config, ConfigErrors> {
        let (text, source) = file
            .read(reloading)?
            .unwrap_or_else(|| (String::new(), NO_FILE.to_string()));
        let config = Config::parse_with_flags(&text, env, flags, registry, &source)?;
        // The settings saved from the admin page live in the data folder the configuration
        // names, so they are read once it is known.
        let settings_path = super::settings::path(&config.data.dir);
        match super::settings::read(&settings_path)? {
            None => Ok(config),
            Some(settings) => Config::parse_layers(
                &text,
                Some((&settings, &settings_path.display().to_string())),
                env,
                flags,
                registry,
                &source,
            ),
        }
    }
}
