use plexichat::logging::LogRecord;
use plexichat::prelude::*;

/// Ships the logs.
#[plugin]
#[derive(Default)]
struct ShipperPlugin;

// A level that is not one, a plugin name that is not one, a key that does not exist.
#[log_sink(level = "wran", plugins = ["Channels"], colour = "red")]
fn bad_keys(_plugin: &ShipperPlugin, _records: &[LogRecord]) {}

// The records are missing.
#[log_sink]
fn no_records(_plugin: &ShipperPlugin) {}

// The records come as a slice of records, not one.
#[log_sink]
async fn one_record(_context: &PluginContext<ShipperPlugin>, _record: &LogRecord) -> Result<(), String> {
    Ok(())
}

// What it returns must say whether it wrote.
#[log_sink(level = "warn")]
fn wrong_return(_plugin: &ShipperPlugin, _records: &[LogRecord]) -> bool {
    true
}

// Fine.
#[log_sink(plugins = ["channels", "plexichat"], capacity = 100)]
async fn shipping(_context: &PluginContext<ShipperPlugin>, records: &[LogRecord]) -> Result<(), String> {
    let _ = records.len();
    Ok(())
}

fn main() {}
