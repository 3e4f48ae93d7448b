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
    permissions = ["plugin:write"],
    config = LogFilesConfig,
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
    let files = context.files();
    let length = files.append(&config.file, text).await?;
    if length >= config.max_bytes {
        // Oldest first, so that no rename replaces a file still to be shifted.
        for index in (1..config.keep).rev() {
            files
                .rename(
                    &format!("{}.{index}", config.file),
                    &format!("{}.{}", config.file, index + 1),
                )
                .await?;
        }
        files
            .rename(&config.file, &format!("{}.1", config.file))
            .await?;
    }
    Ok(())
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
