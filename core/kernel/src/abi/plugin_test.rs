//! Tests that ship inside the binary, registered by `#[plexichat::plugin_test]`: the
//! descriptor, the seed's test categories and the type-erased call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::runtime::Runtime;

/// The seed's test categories: what a test is about, for filtering and the dashboard. The
/// variants, `ALL` and `as_str` come from `plexichat_rules::TEST_CATEGORIES`, the table
/// `#[plugin_test(category = ...)]` checks against.
#[plexichat_macros::__variants(TEST_CATEGORIES)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
pub enum TestCategory {}

/// What a test's shim returns: `Err` is the failure message.
pub type TestFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// How a test runs: an `async fn` on the async runtime, or a plain `fn` on a thread of its own,
/// which the runner can abandon when it overruns its time limit.
#[derive(Clone, Copy)]
pub enum TestBody {
    /// An `async fn` test.
    Async(fn(TestEnv) -> TestFuture),
    /// A synchronous test.
    Blocking(fn(TestEnv) -> Result<(), String>),
}

/// What the runner hands a test's shim: the runtime, the options of the server the test's
/// in-process client imitates (the test support crate's type, which sits above this one), and
/// which attempt this is. Opaque to plugins.
#[derive(Clone)]
pub struct TestEnv {
    runtime: Runtime,
    server: std::sync::Arc<dyn std::any::Any + Send + Sync>,
    attempt: u32,
    handle: tokio::runtime::Handle,
}

impl TestEnv {
    /// What the runner builds for one attempt of one test.
    pub fn new(
        runtime: Runtime,
        server: std::sync::Arc<dyn std::any::Any + Send + Sync>,
        attempt: u32,
        handle: tokio::runtime::Handle,
    ) -> TestEnv {
        TestEnv {
            runtime,
            server,
            attempt,
            handle,
        }
    }

    /// The runtime the test runs in; for the crates above, through `runtime::behind`.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The server options the runner put here, if they are a `T`.
    pub fn server<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.server.downcast_ref()
    }

    /// 1, then 2… when the test is retried.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The async runtime, for a synchronous test's `block_on`.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestEnv")
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// One `#[plugin_test]` function.
pub struct PluginTestDescriptor {
    /// The function's name: the test's name, unique within its plugin.
    pub name: &'static str,
    /// Crate that declared it; it belongs to that crate's plugin.
    pub crate_name: &'static str,
    /// Source location, for messages.
    pub location: &'static str,
    /// The doc comment: what the test checks.
    pub doc: &'static str,
    /// What it is about.
    pub category: TestCategory,
    /// Its own time limit in milliseconds; `None` takes the runner's default.
    pub timeout_ms: Option<u64>,
    /// How many times a failure is retried; `None` takes the run's default.
    pub retries: Option<u32>,
    /// Free-form labels for selecting tests.
    pub tags: &'static [&'static str],
    /// The shim calling the function.
    pub body: TestBody,
}

impl PluginTestDescriptor {
    /// Whether the function is an `async fn`.
    pub fn is_async(&self) -> bool {
        matches!(self.body, TestBody::Async(_))
    }
}

impl fmt::Debug for PluginTestDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.name,
            self.category.as_str(),
            self.location
        )
    }
}

/// What a plugin test may return: `Result<(), E>` whose error says what failed, or `()`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a plugin test must return `Result<(), E>` where `E: Display` (`Err` says what failed), or `()`",
    label = "`{Self}` cannot say what failed"
)]
pub trait TestOutcome {
    /// The test's result, with the error as text.
    fn into_result(self) -> Result<(), String>;
}

impl TestOutcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> TestOutcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_are_what_the_api_serialises() {
        for category in TestCategory::ALL {
            assert_eq!(
                serde_json::to_value(category).unwrap(),
                serde_json::Value::from(category.as_str())
            );
        }
    }
}
