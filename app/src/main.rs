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
    keep_large_allocations_mapped();
    raise_open_files_limit();
    cli::main(plugins::ENABLED)
}

/// Raises the soft limit on open files to the hard one, as Go's runtime does at start: the
/// soft default (often 1,024) is far below what a chat server's WebSockets need, while the
/// hard limit is what the operator allowed. The server still sizes `max_connections` to the
/// limit it ends up with.
fn raise_open_files_limit() {
    #[cfg(unix)]
    // SAFETY: `getrlimit` and `setrlimit` read and write only the struct given, which lives
    // on this stack; a refused `setrlimit` changes nothing.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            // An unlimited hard limit is not a valid soft one for open files.
            limit.rlim_cur = limit.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// glibc's malloc raises its mmap threshold each time a large mapped block is freed, so
/// later large transient buffers come from the heap of the thread that made them and stay
/// resident after they are freed. Password hashing makes those (Argon2id's 19 MiB, on the
/// blocking pool's threads): a server that had signed in 17 people held 180 MB instead of
/// 25. A fixed threshold keeps blocks of 1 MiB and more mapped, returned when freed.
fn keep_large_allocations_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets an allocator parameter; it is called before any thread
    // starts, and an out-of-range value is refused (returns 0), not undefined.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
