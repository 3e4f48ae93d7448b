//! Log sinks registered by `#[plexichat::log_sink]`: the descriptor, the record a sink
//! receives, and the type-erased call. The runtime side (the tracing layer and the queues) is
//! `runtime::log_sinks`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::abi::event::{AContext, APlugin, InstanceFn, PluginArgument};
use crate::runtime::Host;

/// How severe a record is, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Diagnostics for developers.
    Debug,
    /// What happened, normally.
    Info,
    /// Something is wrong but handled.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// Every level's name, least severe first.
    pub const NAMES: [&'static str; 5] = ["trace", "debug", "info", "warn", "error"];

    /// `trace` … `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// The level named `name`, if any.
    pub fn parse(name: &str) -> Option<LogLevel> {
        Some(match name {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One structured log record, as a sink receives it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRecord {
    /// When, in milliseconds since the epoch.
    pub at: i64,
    /// How severe.
    pub level: LogLevel,
    /// The plugin it came from (its span, its `plugin` field, or its crate); `None` for core.
    pub plugin: Option<&'static str>,
    /// The module that logged it (`tracing`'s target).
    pub target: String,
    /// The message.
    pub message: String,
    /// Its other fields, as JSON.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The boxed future a log sink shim returns: `Err` says what failed.
pub type LogSinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One `#[log_sink]` function.
pub struct LogSinkDescriptor {
    /// The function's name: the sink's name.
    pub name: &'static str,
    /// Crate that declared it; it belongs to that crate's plugin.
    pub crate_name: &'static str,
    /// Source location, for messages.
    pub location: &'static str,
    /// The plugins whose records it receives (core's are `"plexichat"`); empty: everyone's.
    pub plugins: &'static [&'static str],
    /// The least severe level it receives.
    pub level: LogLevel,
    /// Records waiting for it at most; past that they are dropped and counted.
    pub capacity: usize,
    /// The shim: finds the plugin or builds its context, and calls the function with a
    /// batch of records, oldest first.
    pub call: for<'a> fn(&'a Host, &'a [LogRecord]) -> LogSinkFuture<'a>,
}

impl LogSinkDescriptor {
    /// Whether this sink takes records of `plugin` (`None`: core) at `level`.
    pub fn wants(&self, plugin: Option<&str>, level: LogLevel) -> bool {
        level >= self.level
            && (self.plugins.is_empty()
                || self
                    .plugins
                    .contains(&plugin.unwrap_or(crate::runtime::log_sinks::CORE)))
    }
}

impl fmt::Debug for LogSinkDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.location)
    }
}

/// What a log sink may return: `Result<(), E>` whose error says what failed, or `()`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a log sink must return `Result<(), E>` where `E: Display` (`Err` says what failed), or `()`",
    label = "`{Self}` cannot say what failed"
)]
pub trait SinkOutcome {
    /// The sink's result, with the error as text.
    fn into_result(self) -> Result<(), String>;
}

impl SinkOutcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> SinkOutcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|error| error.to_string())
    }
}

/// The verdict on a log sink's first argument: its plugin or its plugin's context, not an
/// event (which `PluginArgument` would otherwise accept in that place).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is an event, but a log sink takes its plugin or its context first",
    label = "expected `&MyPlugin` or `&PluginContext<MyPlugin>`"
)]
pub trait SinkArgument<Role> {}

impl<T> SinkArgument<APlugin> for T {}
impl<T> SinkArgument<AContext> for T {}

/// How a log sink's shim gets its first argument; fails the build unless `T` is a plugin or
/// a plugin's context.
#[doc(hidden)]
pub const fn sink_argument<T, Role>() -> InstanceFn<T>
where
    T: PluginArgument<Role>,
    T: SinkArgument<Role>,
{
    T::instance
}
