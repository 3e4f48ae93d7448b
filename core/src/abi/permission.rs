//! The permission vocabulary: each name a plugin can write in `permissions = [...]` is a
//! marker trait here that `#[plugin]` implements for the plugin type, and each service
//! accessor requires one, so using an undeclared service does not compile.
//!
//! The names are the manifest's strings; [`PERMISSIONS`] lists them with what they grant
//! (shown by `plexichat plugins info` and the plugin guide), and `grant!` below maps each to
//! its trait, with a compile error listing the vocabulary for any other string.

use crate::abi::plugin::Plugin;

/// Every permission a plugin can declare, with what it grants.
pub const PERMISSIONS: [(&str, &str); 7] = [
    (
        "plugin:read",
        "read the plugin's own key-value entries and files in its data folder",
    ),
    (
        "plugin:write",
        "write and delete the plugin's own key-value entries and files in its data folder",
    ),
    (
        "database",
        "run SQL on the server's database (its own tables, created by its migrations)",
    ),
    ("events:publish", "publish events to other plugins"),
    (
        "http:client",
        "make outbound HTTP requests through the server's client (rustls, timeouts)",
    ),
    (
        "tests:run",
        "queue any plugin's tests on the test runner and watch their results (tests may call the server's admin routes)",
    ),
    (
        "plugins:read",
        "read every compiled-in plugin's manifest, registrations and state (never change them)",
    ),
];

/// Granted by `permissions = ["plugin:read"]`.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare the `plugin:read` permission",
    label = "reading the plugin's stored data needs `plugin:read`",
    note = "add it to the manifest: `#[plugin(permissions = [\"plugin:read\"])]`"
)]
pub trait ReadData: Plugin {}

/// Granted by `permissions = ["plugin:write"]`.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare the `plugin:write` permission",
    label = "changing the plugin's stored data needs `plugin:write`",
    note = "add it to the manifest: `#[plugin(permissions = [\"plugin:write\"])]`"
)]
pub trait WriteData: Plugin {}

/// Granted by `permissions = ["database"]`.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare the `database` permission",
    label = "the SQL pool needs `database`",
    note = "add it to the manifest: `#[plugin(permissions = [\"database\"])]`"
)]
pub trait Database: Plugin {}

/// Granted by `permissions = ["events:publish"]`.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare the `events:publish` permission",
    label = "publishing events needs `events:publish`",
    note = "add it to the manifest: `#[plugin(permissions = [\"events:publish\"])]`"
)]
pub trait PublishEvents: Plugin {}

/// Granted by `permissions = ["http:client"]`.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare the `http:client` permission",
    label = "outbound HTTP requests need `http:client`",
    note = "add it to the manifest: `#[plugin(permissions = [\"http:client\"])]`"
)]
pub trait HttpClient: Plugin {}

/// Granted by `permissions = ["tests:run"]`.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare the `tests:run` permission",
    label = "running plugin tests needs `tests:run`",
    note = "add it to the manifest: `#[plugin(permissions = [\"tests:run\"])]`"
)]
pub trait RunTests: Plugin {}

/// Granted by `permissions = ["plugins:read"]`.
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` does not declare the `plugins:read` permission",
    label = "reading other plugins' manifests and states needs `plugins:read`",
    note = "add it to the manifest: `#[plugin(permissions = [\"plugins:read\"])]`"
)]
pub trait ReadPlugins: Plugin {}

/// Implements one permission's trait for a plugin type; `#[plugin]` expands to one call per
/// declared permission, spanned at its string, so an unknown name is an error there.
#[doc(hidden)]
#[macro_export]
macro_rules! __plexichat_grant {
    ($plugin:ty, "plugin:read") => {
        impl ::plexichat::__private::perm::ReadData for $plugin {}
    };
    ($plugin:ty, "plugin:write") => {
        impl ::plexichat::__private::perm::WriteData for $plugin {}
    };
    ($plugin:ty, "database") => {
        impl ::plexichat::__private::perm::Database for $plugin {}
    };
    ($plugin:ty, "events:publish") => {
        impl ::plexichat::__private::perm::PublishEvents for $plugin {}
    };
    ($plugin:ty, "http:client") => {
        impl ::plexichat::__private::perm::HttpClient for $plugin {}
    };
    ($plugin:ty, "tests:run") => {
        impl ::plexichat::__private::perm::RunTests for $plugin {}
    };
    ($plugin:ty, "plugins:read") => {
        impl ::plexichat::__private::perm::ReadPlugins for $plugin {}
    };
    ($plugin:ty, $other:literal) => {
        ::core::compile_error!(
            "unknown permission; the valid ones are `plugin:read`, `plugin:write`, `database`, `events:publish`, `http:client`, `tests:run` and `plugins:read` (see the plugin guide)"
        );
    };
}

/// Implements every permission's trait: what `#[plugin]` emits when its manifest has a
/// mistake, so that the mistake is the only error and no service use adds another.
#[doc(hidden)]
#[macro_export]
macro_rules! __plexichat_grant_all {
    ($plugin:ty) => {
        $crate::__plexichat_grant!($plugin, "plugin:read");
        $crate::__plexichat_grant!($plugin, "plugin:write");
        $crate::__plexichat_grant!($plugin, "database");
        $crate::__plexichat_grant!($plugin, "events:publish");
        $crate::__plexichat_grant!($plugin, "http:client");
        $crate::__plexichat_grant!($plugin, "tests:run");
        $crate::__plexichat_grant!($plugin, "plugins:read");
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_vocabulary_and_the_grant_macro_agree() {
        // Every listed name has an arm: a plugin declaring all of them compiles (the facade
        // test `permissions_are_granted` does that); here, every arm is listed.
        let source = include_str!("permission.rs");
        let listed = |prefix: &str| -> Vec<&str> {
            source
                .lines()
                .filter_map(|line| line.trim().strip_prefix(prefix))
                .filter_map(|rest| rest.split('"').next())
                .collect()
        };
        let names: Vec<&str> = super::PERMISSIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(listed("($plugin:ty, \""), names);
        assert_eq!(listed("$crate::__plexichat_grant!($plugin, \""), names);
    }
}
