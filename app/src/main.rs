//! `plexichat`: serves the compiled-in plugins and describes them.
//!
//! Exit codes: 0 success, 1 the program could not run (a registry problem, a socket error),
//! 2 the command line was wrong (clap's own errors, an unknown plugin name).

mod cli;
mod commands;
mod gui;
mod page;
mod plugins;
mod selftest;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main(plugins::ENABLED)
}
