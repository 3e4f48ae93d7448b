//! Running the tests plugins ship inside the binary (`#[plexichat::plugin_test]`): what a test
//! receives ([`TestContext`]) and the runner (a priority queue, bounded concurrency, time
//! limits, retries, one run per test at a time).
//!
//! Mechanism only: the test manager plugin adds schedules, history, the REST API and the
//! dashboard on top; `plexichat plugins self-test` uses the runner directly.
//!
//! It sits above `web`, beside the facade, because a test's client is the whole application
//! served in-process (`oneshot`), exactly as a socket would reach it.

mod report;
mod runner;

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::testing::TestClient;
use plexichat_kernel::abi::permission::RunTests;
use plexichat_kernel::abi::plugin::Plugin;
use plexichat_kernel::abi::plugin_test::TestEnv;
use plexichat_kernel::runtime::{PluginContext, Runtime, behind};
use plexichat_web::ServerOptions;

pub use report::{
    InProcessReport, Selection, any_failed, junit, run_in_process, run_selection, should_fail,
    table,
};
pub use runner::{
    Priority, RetryPolicy, RunRequest, RunStatus, Runner, RunnerEvent, RunnerOptions, RunnerStatus,
    SubmitError, TestRun, Ticket, Trigger, parse_priority,
};

/// Plugin `P`'s handle in one of its `#[plugin_test]`s: every service of
/// [`PluginContext<P>`] (through `Deref`), a client for the server's routes
/// ([`TestContext::app`]), and, for a synchronous test, [`TestContext::block_on`].
pub struct TestContext<P> {
    context: PluginContext<P>,
    env: TestEnv,
    app: OnceLock<TestClient>,
    admin_app: OnceLock<TestClient>,
    plugin: PhantomData<fn() -> P>,
}

impl<P: Plugin> TestContext<P> {
    /// Called by the shim `#[plugin_test]` generates.
    #[doc(hidden)]
    pub fn __new(env: TestEnv) -> TestContext<P> {
        TestContext {
            context: PluginContext::new(behind::of_test(&env).clone()),
            env,
            app: OnceLock::new(),
            admin_app: OnceLock::new(),
            plugin: PhantomData,
        }
    }

    /// The server's routes, served in-process exactly as a socket would reach them (every
    /// plugin's routes, middleware and the core's): `context.app().get("/api/v1/x").await`,
    /// as an anonymous client: it has no admin token (see [`TestContext::admin_app`]). Built
    /// on first use.
    pub fn app(&self) -> &TestClient {
        self.app.get_or_init(|| {
            let anonymous = ServerOptions {
                admin_token: None,
                ..ServerOptions::clone(self.server())
            };
            TestClient::new(behind::of_test(&self.env), &anonymous)
        })
    }

    /// Like [`TestContext::app`], but `.admin()` requests carry the server's admin token:
    /// the test acts as the admin. Needs the `admin:api` permission, so that no plugin's test
    /// can disable, reconfigure or back up the server unless its manifest says so.
    pub fn admin_app(&self) -> &TestClient
    where
        P: plexichat_kernel::abi::permission::AdminApi,
    {
        self.admin_app
            .get_or_init(|| TestClient::new(behind::of_test(&self.env), self.server()))
    }

    /// The options of the server whose in-process client this test gets; the runner always
    /// puts them in the environment.
    fn server(&self) -> &ServerOptions {
        self.env
            .server()
            .expect("the runner hands every test its server's options")
    }

    /// Which attempt this is: 1, then 2… when the test is retried.
    pub fn attempt(&self) -> u32 {
        self.env.attempt()
    }

    /// Runs a future to completion from a synchronous test (which runs on a thread of its
    /// own): `context.block_on(context.app().get("/health"))`. In an `async` test, `.await`
    /// instead; called there, this panics.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.env.handle().block_on(future)
    }
}

/// The `tests:run` service on a plugin's context: `context.tests()`, in scope through the
/// prelude. A trait because the runner sits above the kernel that defines `PluginContext`.
pub trait ContextTests<P> {
    /// The plugin test runner: queue any plugin's tests and watch their results. Needs the
    /// `tests:run` permission.
    fn tests(&self) -> Tests
    where
        P: RunTests;
}

impl<P: Plugin> ContextTests<P> for PluginContext<P> {
    fn tests(&self) -> Tests
    where
        P: RunTests,
    {
        let runtime = behind::context(self);
        Tests {
            runner: Runner::of(runtime),
            runtime: runtime.clone(),
        }
    }
}

/// What the `tests:run` permission grants: the server's one test runner, to queue any
/// plugin's tests, watch them and tune the runner; `context.tests()`.
#[derive(Clone)]
pub struct Tests {
    runner: Arc<Runner>,
    runtime: Runtime,
}

impl Tests {
    /// Queues a run of one plugin test, or joins the run of that test already queued or
    /// running; see [`Runner::submit`].
    pub fn submit(&self, request: RunRequest) -> Result<Ticket, SubmitError> {
        self.runner.submit(&self.runtime, request)
    }

    /// Applies new runner options (workers, limits) at once.
    pub fn configure(&self, options: RunnerOptions) {
        self.runner.configure(options);
    }

    /// The options in force.
    pub fn options(&self) -> RunnerOptions {
        self.runner.options()
    }

    /// Live announcements of runs queued, started and finished.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RunnerEvent> {
        self.runner.subscribe()
    }

    /// The queue and the runs under way.
    pub fn status(&self) -> RunnerStatus {
        self.runner.status()
    }

    /// Points tests' in-process clients at the configured server's options (limits and the
    /// admin token a server on this data folder uses), for a one-shot process that runs tests
    /// without serving: a server's runner already has them.
    pub fn use_configured_server(&self) {
        self.runner.use_configured_server(&self.runtime);
    }
}

impl std::fmt::Debug for Tests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tests").finish_non_exhaustive()
    }
}

impl<P> Deref for TestContext<P> {
    type Target = PluginContext<P>;

    fn deref(&self) -> &PluginContext<P> {
        &self.context
    }
}

impl<P: Plugin> std::fmt::Debug for TestContext<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContext")
            .field("plugin", &P::NAME)
            .field("attempt", &self.env.attempt())
            .finish()
    }
}
