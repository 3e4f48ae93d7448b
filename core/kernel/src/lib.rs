//! The kernel of PlexiChat, below the HTTP server: the plugin ABI (descriptors, slices, the
//! traits generated code implements), the registry that checks what linked in, typed
//! configuration, the runtime (plugin lifecycle, events, tasks, commands), basic storage,
//! and the extractors through which a route reaches its plugin.
//!
//! An implementation detail of the `plexichat` facade: a plugin depends on the facade, which
//! re-exports the plugin API from here; the binary and host-side tests depend on this crate
//! for what a plugin must not reach (the `Runtime`'s constructors and transitions, storage,
//! the data folder). It must not depend on `plexichat-web`, `plexichat-backup` or
//! `plexichat-testing`: Cargo refuses the cycle.
//!
//! Inside, lowest first: `abi` → `registry` → `config` → `runtime` and `storage` → `extract`.
//! `abi` names the runtime's handles (`PluginContext`, `Runtime`, `Host`, `CommandContext`),
//! because the hooks it declares receive them.

pub mod abi;
pub mod config;
pub mod error;
pub mod extract;
pub mod registry;
pub mod runtime;
pub mod storage;

/// The current time as RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T05:06:57.123Z`.
pub fn timestamp() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
