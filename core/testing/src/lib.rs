//! Test support above the HTTP server: the runner of the tests plugins ship inside the binary
//! (`selftest`), and the in-process client and fixtures plugin authors' own tests use
//! (`testing`). Both serve the whole application in-process, so this crate sits above
//! `plexichat-web`; nothing below may depend on it.

pub mod selftest;
pub mod testing;
