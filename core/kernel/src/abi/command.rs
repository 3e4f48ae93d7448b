//! Plugin CLI commands registered by `#[plexichat::command]`: the descriptor, the traits that
//! decide what a command function may take and return, and the shim that calls it.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::abi::hooks::BoxError;
use crate::abi::plugin::Plugin;
// The handle every command receives, and the runtime and invocation it is built from: the
// runtime types this layer names (see the layering test in `tests/it/tidy.rs`).
use crate::runtime::CommandContext;
use crate::runtime::Host;
use crate::runtime::Invocation;

/// What a command's flags ask of the framework before its function runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommandFlags {
    /// It needs the admin token: `--token`, `[server] admin_token` (or
    /// `PLEXICHAT_ADMIN_TOKEN`), or the data folder's `admin_token` file; a `--token` that
    /// differs from the data folder's is refused.
    pub admin_only: bool,
    /// It changes or destroys data: on a terminal it asks for confirmation, otherwise it
    /// needs `--yes`.
    pub dangerous: bool,
    /// It acts on a running server with credentials: it needs `--server URL` and a token.
    pub requires_auth: bool,
    /// It acts on a running server (`CommandContext::server`): it takes `--server URL`. A
    /// command without it runs on this machine's data and has no `--server` option, so it
    /// can never be mistaken for acting on a server. Implied by `requires_auth`.
    pub server: bool,
    /// It works with the plugins running: once its arguments are read, every plugin the
    /// configuration enables runs its `init` in start order, without scheduled jobs (the
    /// server's lifecycle events are not sent), and after the function they stop. A plugin
    /// that fails to start is reported by `CommandContext::start_failures`. (A command
    /// cannot start or stop plugins itself.)
    pub starts_plugins: bool,
}

/// One command, as registered by `#[plexichat::command]`.
pub struct CommandDescriptor {
    /// The first word after `plexichat`; `None` is the plugin's name.
    pub category: Option<&'static str>,
    /// The second word.
    pub name: &'static str,
    /// The first paragraph of the function's doc comment.
    pub about: &'static str,
    /// The whole doc comment.
    pub long_about: &'static str,
    /// The plugin version that added it; `None` is the plugin's current version.
    pub since: Option<&'static str>,
    /// What the framework checks before running it.
    pub flags: CommandFlags,
    /// Name of the function, for listings and messages.
    pub handler: &'static str,
    /// Crate that declared the command; it belongs to that crate's plugin.
    pub crate_name: &'static str,
    /// Source location, so duplicate-command errors can name both parties.
    pub location: &'static str,
    /// Adds the command's own arguments to its clap command.
    pub args: fn(clap::Command) -> clap::Command,
    /// Parses the arguments and runs the function.
    pub run: for<'a> fn(Host, Invocation, &'a clap::ArgMatches) -> CommandFuture,
}

impl fmt::Debug for CommandDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.category.unwrap_or("<plugin>"),
            self.name,
            self.location
        )
    }
}

/// Why a command did not succeed.
#[derive(Debug)]
pub enum CommandError {
    /// Its arguments were wrong (exit 2).
    Usage(String),
    /// It failed while running (exit 1).
    Failed(BoxError),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Usage(message) => f.write_str(message),
            CommandError::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for CommandError {}

/// What a command's shim returns.
pub type CommandFuture = Pin<Box<dyn Future<Output = Result<(), CommandError>> + Send>>;

/// A command's arguments: a struct with `#[derive(Args)]` (clap's, re-exported as
/// `plexichat::clap`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command's arguments",
    label = "a command takes its context and a struct of arguments",
    note = "declare a struct and derive clap's `Args` (the prelude has `clap`): `#[derive(clap::Args)] struct CountArgs {{ /// The help. #[arg(long)] limit: u32 }}`; a command without arguments takes only its context"
)]
pub trait CommandArgs: clap::Args + clap::FromArgMatches + Send + 'static {}

impl<A: clap::Args + clap::FromArgMatches + Send + 'static> CommandArgs for A {}

/// The arguments of a command that takes only its context.
#[doc(hidden)]
#[derive(Debug, clap::Args)]
pub struct NoArgs {}

/// What a command function may return: `()` or `Result<(), E>` with any error.
#[diagnostic::on_unimplemented(
    message = "a command cannot return `{Self}`",
    label = "return `Result<(), BoxError>` (or `()`)",
    note = "print what the command shows (to stdout) and return `Ok(())`; an `Err` exits with status 1 and its message"
)]
pub trait CommandReturn: Send + 'static {
    /// The outcome as the framework reports it.
    fn into_outcome(self) -> Result<(), BoxError>;
}

impl CommandReturn for () {
    fn into_outcome(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError> + Send + 'static> CommandReturn for Result<(), E> {
    fn into_outcome(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// A command's arguments type, erased: how to declare them and how to read them back.
///
/// The expansion makes one of these in a `const` spanned at the arguments' type, the only
/// place that needs `A: CommandArgs`, so a type that is not one is one error, there.
#[doc(hidden)]
pub struct ArgsShape {
    /// Adds the arguments to a clap command: the descriptor's `args`.
    pub augment: fn(clap::Command) -> clap::Command,
    /// Reads them from the matches, boxed.
    pub parse: fn(&clap::ArgMatches) -> Result<Box<dyn Any + Send>, clap::Error>,
}

/// The [`ArgsShape`] of `A`.
#[doc(hidden)]
pub const fn args_shape<A: CommandArgs>() -> ArgsShape {
    ArgsShape {
        augment: A::augment_args,
        parse: parse_as::<A>,
    }
}

fn parse_as<A: CommandArgs>(
    matches: &clap::ArgMatches,
) -> Result<Box<dyn Any + Send>, clap::Error> {
    A::from_arg_matches(matches).map(|args| Box::new(args) as Box<dyn Any + Send>)
}

/// Reads `A` with `parse` (from the same command's [`ArgsShape`]) and runs `handler`: what
/// the descriptor's `run` does.
#[doc(hidden)]
pub fn run_command<P, A, F, Fut>(
    handler: F,
    parse: fn(&clap::ArgMatches) -> Result<Box<dyn Any + Send>, clap::Error>,
    host: Host,
    invocation: Invocation,
    matches: &clap::ArgMatches,
) -> CommandFuture
where
    P: Plugin,
    A: Send + 'static,
    F: FnOnce(CommandContext<P>, A) -> Fut + Send + 'static,
    Fut: Future<Output: CommandReturn> + Send + 'static,
{
    let parsed = parse(matches)
        .map_err(|error| error.to_string())
        .and_then(|args| {
            args.downcast::<A>()
                .map(|args| *args)
                .map_err(|_| "the command's arguments were read as another type".to_string())
        });
    let args = match parsed {
        Ok(args) => args,
        Err(message) => {
            return Box::pin(async move { Err(CommandError::Usage(message)) });
        }
    };
    let context = CommandContext::new(host.into_runtime(), invocation);
    Box::pin(async move {
        handler(context, args)
            .await
            .into_outcome()
            .map_err(|error| match error.downcast::<UsageError>() {
                Ok(usage) => CommandError::Usage(usage.0),
                Err(error) => CommandError::Failed(error),
            })
    })
}

/// An error that is the operator's to fix: a command that returns it (`Err(UsageError(..)
/// .into())`) exits with status 2 and the message, as for a bad argument clap found.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
