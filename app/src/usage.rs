//! Errors that are the user's to fix, and the exit code every error leaves with: 2 for a
//! [`UsageError`] (and clap's own errors), 1 for anything else.

use std::process::ExitCode;

/// An error that is the user's to fix, reported with exit code 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The exit code of a command that failed with `error`.
pub(crate) fn exit_code(error: &anyhow::Error) -> ExitCode {
    if error.is::<UsageError>() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}
