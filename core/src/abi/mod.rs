//! The lowest layer: what a plugin crate's generated code produces and the rest of the
//! program consumes. Descriptors (plain data and function pointers, `'static` so they can
//! live in link sections), the slices that collect them, and the traits the macros
//! implement. It names only two types from above it: `Runtime` and `PluginContext`, the
//! handles that generated shims receive.

pub(crate) mod backup;
pub(crate) mod command;
pub(crate) mod config_spec;
pub(crate) mod event;
pub(crate) mod expansion;
pub(crate) mod hooks;
pub mod migration;
pub mod permission;
pub mod plugin;
pub mod route;
pub(crate) mod slices;
