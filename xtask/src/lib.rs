//! Project automation behind `cargo xtask`, as a library so that the test suite checks the
//! same facts (generated files fresh, binaries static) that the commands report.

pub mod assets_bench;
pub mod bench;
pub mod bench_common;
pub mod build;
pub mod chat_bench;
pub mod codegen;
pub mod elf;
pub mod new_plugin;
pub mod postgres;
pub mod scale;
pub mod test;
pub mod with;
pub mod workspace;
