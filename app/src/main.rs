//! `plexichat`: serves the compiled-in plugins and describes them.
//!
//! Exit codes: 0 success, 1 the program could not run (a registry problem, a socket error),
//! 2 the command line was wrong (clap's own errors, an unknown plugin name).

mod backup;
mod cli;
mod commands;
mod configuration;
mod db;
mod describe;
mod gui;
mod output;
mod page;
mod plugins;
mod selftest;
mod serve;
mod setup;
mod usage;

use std::process::ExitCode;

/// The target of the app's own log lines (database open, server starting, reloads), which
/// `RUST_LOG` filters name: the module that wrote them all before they moved to `setup` and
/// `serve`, kept so that moving code between modules changes no log line.
const LOG_TARGET: &str = "plexichat::cli";

fn main() -> ExitCode {
    cli::main(plugins::ENABLED)
}
