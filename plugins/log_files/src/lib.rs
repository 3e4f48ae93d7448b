//! `log_files`: the server's log records as JSON lines in `<data>/plugins/log_files/`,
//! rotated by size (`plexichat.jsonl`, then `.1`, `.2` … up to `keep`). One `#[log_sink]`
//! receives every plugin's and core's records from `info` up; the configuration narrows them.
//! Lines are written in batches from a bounded queue, so a slow disk drops records (and says
//! so in the log) rather than slowing a request.

use plexichat::logging::{LogLevel, LogRecord};
use plexichat::prelude::*;

/// JSON-lines log files under the data directory, rotated by size.
#[plugin(
    author = "PlexiChat",
    permissions = ["plugin:read", "plugin:write"],
    config = LogFilesConfig,
    lifecycle = true,
    tags = ["logging", "operations"],
)]
#[derive(Default)]
pub struct LogFiles;

/// `[plugins.log_files]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFilesConfig {
    /// The least severe level written: `info`, `warn` or `error` (`RUST_LOG` must let it
    /// through too).
    pub level: String,
    /// Only these plugins' records (`plexichat`: core's); empty: everyone's.
    pub plugins: Vec<String>,
    /// The file, inside the plugin's data folder.
    pub file: String,
    /// A file this large is rotated: renamed `<file>.1`, the older ones shifted.
    #[schemars(range(min = 4096))]
    pub max_bytes: u64,
    /// Rotated files kept besides the current one.
    #[schemars(range(min = 1, max = 100))]
    pub keep: u32,
}

impl Default for LogFilesConfig {
    fn default() -> Self {
        LogFilesConfig {
            level: "info".into(),
            plugins: Vec::new(),
            file: "plexichat.jsonl".into(),
            max_bytes: 10 << 20,
            keep: 5,
        }
    }
}

impl LogFilesConfig {
    /// The configured level, or what is wrong with it.
    fn least(&self) -> Result<LogLevel, String> {
        match LogLevel::parse(&self.level) {
            Some(level) if level >= LogLevel::Info => Ok(level),
            _ => Err(format!(
                "[plugins.log_files] level: `{}` is not one of info, warn, error",
                self.level
            )),
        }
    }
}

impl Lifecycle for LogFiles {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        // A level it cannot write fails the start, not every batch after it.
        context.config::<LogFiles>().unwrap_or_default().least()?;
        Ok(())
    }
}

/// One line per record: `{"at", "level", "plugin", "target", "message", "fields"}`, `at` in
/// RFC 3339 with milliseconds and `plugin` `null` for core.
fn line(record: &LogRecord) -> String {
    let mut line = json!({
        "at": plexichat::storage::rfc3339_millis(record.at),
        "level": record.level,
        "plugin": record.plugin,
        "target": record.target,
        "message": record.message,
        "fields": record.fields,
    })
    .to_string();
    line.push('\n');
    line
}

/// Appends the records the configuration selects, then rotates if the file outgrew
/// `max_bytes`.
#[log_sink(level = "info", capacity = 8192)]
async fn json_lines(
    context: &PluginContext<LogFiles>,
    records: &[LogRecord],
) -> Result<(), BoxError> {
    let config = context.config::<LogFiles>().unwrap_or_default();
    let least = config.least()?;
    let wanted = |record: &&LogRecord| {
        record.level >= least
            && (config.plugins.is_empty()
                || config
                    .plugins
                    .iter()
                    .any(|plugin| plugin == record.plugin.unwrap_or(plexichat::logging::CORE)))
    };
    let text: String = records.iter().filter(wanted).map(line).collect();
    if text.is_empty() {
        return Ok(());
    }
    // Every name resolved inside the data folder first; then one blocking job appends and
    // rotates, under a lock, so that a call abandoned at its time limit (whose job runs on)
    // never interleaves with the next.
    let files = context.files();
    let current = files.path(&config.file)?;
    let rotated = (1..=config.keep)
        .map(|index| files.path(&format!("{}.{index}", config.file)))
        .collect::<Result<Vec<_>, _>>()?;
    let max_bytes = config.max_bytes;
    tokio::task::spawn_blocking(move || write(&current, &rotated, text.as_bytes(), max_bytes))
        .await??;
    Ok(())
}

/// Appends `text` to `current`; past `max_bytes`, shifts `current` into `rotated[0]` and each
/// older file one further, the last falling off.
fn write(
    current: &std::path::Path,
    rotated: &[std::path::PathBuf],
    text: &[u8],
    max_bytes: u64,
) -> std::io::Result<()> {
    use std::io::Write as _;
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = WRITING.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(folder) = current.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(current)?;
    file.write_all(text)?;
    if file.metadata()?.len() < max_bytes {
        return Ok(());
    }
    drop(file);
    // Oldest first, so that no rename replaces a file still to be shifted.
    for pair in rotated.windows(2).rev() {
        match std::fs::rename(&pair[0], &pair[1]) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    match rotated.first() {
        Some(first) => std::fs::rename(current, first),
        None => std::fs::remove_file(current),
    }
}

/// Refuses a reload whose `level` is not a level this sink writes.
#[on_event]
fn check_reload(_plugin: &LogFiles, change: &ConfigChanging) -> Result<(), String> {
    match change.config_of::<LogFiles>() {
        Some(config) => config.least().map(|_| ()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object() {
        let mut fields = plexichat::serde_json::Map::new();
        fields.insert("status".into(), json!(503));
        let text = line(&LogRecord {
            at: 0,
            level: LogLevel::Warn,
            plugin: Some("channels"),
            target: "channels::api".into(),
            message: "a \"quoted\"\nmessage".into(),
            fields,
        });
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text}"
        );
        let value: Value = plexichat::serde_json::from_str(&text).unwrap();
        assert_eq!(value["at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(value["level"], "warn");
        assert_eq!(value["plugin"], "channels");
        assert_eq!(value["fields"]["status"], 503);
        assert_eq!(value["message"], "a \"quoted\"\nmessage");
    }

    #[test]
    fn a_full_file_is_rotated_and_the_oldest_falls_off() {
        let folder = std::env::temp_dir().join(format!("log-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let current = folder.join("x.jsonl");
        let rotated: Vec<_> = (1..=2)
            .map(|index| folder.join(format!("x.jsonl.{index}")))
            .collect();
        for round in 0..4u8 {
            write(&current, &rotated, &[b'a' + round; 10], 10).unwrap();
        }
        // Four files' worth, two kept: the newest rotated is the last written.
        assert!(!current.exists());
        assert_eq!(std::fs::read(&rotated[0]).unwrap(), [b'd'; 10]);
        assert_eq!(std::fs::read(&rotated[1]).unwrap(), [b'c'; 10]);
        write(&current, &rotated, b"small", 10).unwrap();
        assert_eq!(std::fs::read(&current).unwrap(), b"small");
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn only_info_and_above_are_levels_to_write() {
        let with = |level: &str| LogFilesConfig {
            level: level.into(),
            ..LogFilesConfig::default()
        };
        assert_eq!(with("warn").least(), Ok(LogLevel::Warn));
        assert!(with("debug").least().unwrap_err().contains("level"));
        assert!(with("loud").least().is_err());
    }
}
