//! What a plugin's CLI command receives: [`CommandContext<P>`], its plugin's services (as a
//! [`PluginContext<P>`]) plus how it was invoked, with a client for a running server.

use std::marker::PhantomData;
use std::ops::Deref;

use crate::abi::hooks::BoxError;
use crate::abi::plugin::Plugin;
use crate::config::secret::Secret;
use crate::runtime::state::PluginStatus;
use crate::runtime::{InitFailure, PluginContext, Runtime};

/// How a command was invoked: the options every plugin command has.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    /// `--server URL`: the running server to act on.
    pub server: Option<url::Url>,
    /// The token to present to it: `--token`, `[server] admin_token` or the data folder's.
    pub token: Option<Secret>,
    /// `--yes`: the operator confirmed in advance.
    pub yes: bool,
}

/// Plugin `P`'s handle in one of its commands: every service of [`PluginContext<P>`] (through
/// `Deref`: `context.kv()`, `context.db()`, `context.files()`, `context.config::<P>()`) on the
/// configured database and data folder, plus [`CommandContext::server`] for commands that act
/// on a running server. The plugin's `init` has not run: use its services, not state built in
/// `init`.
pub struct CommandContext<P> {
    context: PluginContext<P>,
    invocation: Invocation,
    plugin: PhantomData<fn() -> P>,
}

impl<P: Plugin> CommandContext<P> {
    pub(crate) fn new(runtime: Runtime, invocation: Invocation) -> CommandContext<P> {
        CommandContext {
            context: PluginContext::new(runtime),
            invocation,
            plugin: PhantomData,
        }
    }

    /// The plugins that failed to start for this command, with why: empty unless the command
    /// is `starts_plugins`, and then empty when everything started.
    pub fn start_failures(&self) -> Vec<InitFailure> {
        let runtime = self.context.runtime();
        runtime
            .registry()
            .plugins()
            .iter()
            .filter(|plugin| runtime.status(plugin.name) == Some(PluginStatus::Failed))
            .map(|plugin| InitFailure {
                plugin: plugin.name,
                error: runtime.failure(plugin.name).unwrap_or_default(),
            })
            .collect()
    }

    /// Whether the operator passed `--yes`.
    pub fn yes(&self) -> bool {
        self.invocation.yes
    }

    /// The running server named by `--server`, with the token, if any, that the command was
    /// given. An error that says to pass `--server` if there is none.
    pub fn server(&self) -> Result<ServerClient<P>, BoxError> {
        let url = self.invocation.server.clone().ok_or_else(|| {
            format!(
                "this command of plugin `{}` acts on a running server: pass `--server http://HOST:PORT` (its author declares it with `#[plexichat::command(server = true)]`, which gives it that option)",
                P::NAME
            )
        })?;
        Ok(ServerClient {
            url,
            token: self.invocation.token.clone(),
            client: crate::runtime::http_client::HttpClient::<P>::new(),
        })
    }
}

impl<P> Deref for CommandContext<P> {
    type Target = PluginContext<P>;

    fn deref(&self) -> &PluginContext<P> {
        &self.context
    }
}

impl<P: Plugin> std::fmt::Debug for CommandContext<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext")
            .field("plugin", &P::NAME)
            .field("invocation", &self.invocation)
            .finish()
    }
}

/// A running server, as `--server` named it: requests to its paths carry the command's token
/// as a bearer token. Built on the shared outbound client (bounded times, a user agent
/// naming the plugin).
pub struct ServerClient<P> {
    url: url::Url,
    token: Option<Secret>,
    client: crate::runtime::http_client::HttpClient<P>,
}

impl<P: Plugin> ServerClient<P> {
    /// The server's base URL.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// A `GET` of `path` (`/api/v1/...`, below the URL `--server` gave) on the server.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    /// A `POST` to `path` on the server.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    /// A request with any method to `path` on the server.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        // A string: a bad URL fails when the request is sent, with reqwest's error.
        let url = format!(
            "{}/{}",
            self.url.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }
}

impl<P> std::fmt::Debug for ServerClient<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("url", &self.url.as_str())
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}
