//! How the crates above the kernel (web, test support) reach the runtime behind a plugin's
//! handle, and build the router state. The facade never re-exports this module: a plugin depends on the facade only, so
//! it cannot call these, while `PluginContext` and `Plugins` have no method that returns
//! the runtime.

use crate::abi::plugin_test::TestEnv;
use crate::runtime::{Host, PluginContext, Plugins, Runtime};

/// The runtime behind a plugin's context: the test support crate builds `context.tests()`
/// on it.
pub fn context<P: crate::abi::plugin::Plugin>(context: &PluginContext<P>) -> &Runtime {
    context.runtime()
}

/// The runtime behind the `plugins:read` service: the web crate describes the server's
/// routes from it (the OpenAPI document).
pub fn plugins(plugins: &Plugins) -> &Runtime {
    &plugins.runtime
}

/// The router state every route is built on, around `runtime`.
pub fn host(runtime: Runtime) -> Host {
    Host(runtime)
}

/// The runtime behind the router state: the web crate's own handlers and extractors use it,
/// while a plugin's handler that takes `State<Host>` gets nothing it can call.
pub fn of_host(host: &Host) -> &Runtime {
    host.runtime()
}

/// The runtime a plugin test runs in: the test support crate builds the test's context on it.
pub fn of_test(env: &TestEnv) -> &Runtime {
    env.runtime()
}
