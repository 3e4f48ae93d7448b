//! The lowest layer: what a plugin crate's generated code produces and the rest of the
//! program consumes. Descriptors (plain data and function pointers, `'static` so they can
//! live in link sections), the slices that collect them, and the traits the macros
//! implement. From above it, it names only the runtime's handles: `Host`, the closed runtime
//! every function pointer receives, and what its generic glue builds from it for a plugin
//! (`PluginContext`, a command's `CommandContext` and `Invocation`).

pub mod assets;
pub mod backup;
pub mod command;
pub mod config_spec;
pub mod debug;
pub mod event;
pub mod expansion;
pub mod health;
pub mod hooks;
pub mod log_sink;
pub mod middleware;
pub mod migration;
pub mod openapi;
pub mod permission;
pub mod plugin;
pub mod plugin_test;
pub mod route;
pub mod slices;
