//! The lowest layer: what a plugin crate's generated code produces and the rest of the
//! program consumes. Descriptors (plain data and function pointers, `'static` so they can
//! live in link sections), the slices that collect them, and the traits the macros
//! implement. From above it, it names only the handles that generated shims receive:
//! `Runtime`, `PluginContext`, and a command's `CommandContext` and `Invocation`.

pub(crate) mod assets;
pub(crate) mod backup;
pub(crate) mod command;
pub(crate) mod config_spec;
pub(crate) mod event;
pub(crate) mod expansion;
pub(crate) mod health;
pub(crate) mod hooks;
pub(crate) mod middleware;
pub mod migration;
pub(crate) mod openapi;
pub mod permission;
pub mod plugin;
pub(crate) mod plugin_test;
pub mod route;
pub(crate) mod slices;
