//! Named health checks registered by `#[plexichat::health_check(liveness)]` or
//! `(readiness)`: the descriptor and the type-erased call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::abi::event::{AContext, APlugin, InstanceFn, PluginArgument};
use crate::runtime::Host;

/// What a failing check means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthKind {
    /// The plugin is broken and will not recover by itself: failing repeatedly gets it
    /// restarted, and past a limit marked failed.
    Liveness,
    /// The plugin cannot serve now (a backend is unreachable): `/ready` and the plugin's
    /// health answer 503 while it fails.
    Readiness,
}

impl HealthKind {
    /// `liveness` or `readiness`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthKind::Liveness => "liveness",
            HealthKind::Readiness => "readiness",
        }
    }
}

/// The boxed future a health check shim returns: `Err` says what is wrong.
pub type HealthFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One `#[health_check]` function.
pub struct HealthCheckDescriptor {
    /// The function's name: the check's name.
    pub name: &'static str,
    /// Crate that declared it; it belongs to that crate's plugin.
    pub crate_name: &'static str,
    /// Source location, for messages.
    pub location: &'static str,
    /// Liveness or readiness.
    pub kind: HealthKind,
    /// The shim: finds the plugin or builds its context, and calls the function.
    pub call: for<'a> fn(&'a Host) -> HealthFuture<'a>,
}

impl fmt::Debug for HealthCheckDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.name,
            self.kind.as_str(),
            self.location
        )
    }
}

/// What a health check may return: `Result<(), E>` whose error says what is wrong, or `()`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a health check must return `Result<(), E>` where `E: Display` (`Err` says what is wrong), or `()`",
    label = "`{Self}` cannot say what is wrong"
)]
pub trait CheckOutcome {
    /// The check's result, with the error as text.
    fn into_result(self) -> Result<(), String>;
}

impl CheckOutcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> CheckOutcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|error| error.to_string())
    }
}

/// The verdict on a health check's argument: its plugin or its plugin's context, not an
/// event (which `PluginArgument` would otherwise accept in that place).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is an event, but a health check takes its plugin or its context",
    label = "expected `&MyPlugin` or `&PluginContext<MyPlugin>`"
)]
pub trait CheckArgument<Role> {}

impl<T> CheckArgument<APlugin> for T {}
impl<T> CheckArgument<AContext> for T {}

/// How a health check's shim gets its argument; fails the build unless `T` is a plugin or a
/// plugin's context.
#[doc(hidden)]
pub const fn check_argument<T, Role>() -> InstanceFn<T>
where
    T: PluginArgument<Role>,
    T: CheckArgument<Role>,
{
    T::instance
}
