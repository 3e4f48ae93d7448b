//! What generated code calls at compile time and at run time, besides the descriptor types:
//! const checks that fail the build at the user's attribute (versions, reserved names), the
//! compile-time default prefix, and small shims. Reached only through
//! `::plexichat::__private`.

use std::any::Any;
use std::sync::Arc;

/// The version of the facade, checked against the macro crate's in every expansion.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The error an event handler shim reports when it cannot call the user's function.
pub fn fail(message: std::fmt::Arguments<'_>) -> Result<(), String> {
    Err(message.to_string())
}

/// `None` for an empty string: cargo sets `CARGO_PKG_HOMEPAGE` and friends to `""` when
/// the manifest leaves them out.
pub const fn non_empty(value: &'static str) -> Option<&'static str> {
    if value.is_empty() { None } else { Some(value) }
}

/// Fails the build when a plugin needs a newer PlexiChat than the facade it is compiled
/// against. Both versions are `major.minor.patch`; the macro checked the plugin's syntax.
pub const fn check_min_version(required: &str) {
    let (need, have) = (
        parse_version(required.as_bytes()),
        parse_version(VERSION.as_bytes()),
    );
    let newer = need[0] > have[0]
        || (need[0] == have[0] && need[1] > have[1])
        || (need[0] == have[0] && need[1] == have[1] && need[2] > have[2]);
    if newer {
        panic!(
            "this plugin's `min_plexichat_version` is newer than the plexichat it is built against"
        );
    }
}

/// `major.minor.patch` as numbers; stops at the first character that is not a digit or a
/// dot, so pre-release suffixes are ignored.
const fn parse_version(text: &[u8]) -> [u64; 3] {
    let mut parts = [0u64; 3];
    let (mut index, mut part) = (0, 0);
    while index < text.len() && part < 3 {
        let byte = text[index];
        if byte == b'.' {
            part += 1;
        } else if byte.is_ascii_digit() {
            parts[part] = parts[part] * 10 + (byte - b'0') as u64;
        } else {
            break;
        }
        index += 1;
    }
    parts
}

/// Creates a plugin's state; `#[plugin]` types implement `Default`.
pub fn construct<P: Default + Send + Sync + 'static>() -> Arc<dyn Any + Send + Sync> {
    Arc::new(P::default())
}

/// Fails the build when the macros that expanded a plugin come from another version than
/// this facade, which can only happen if a crate depends on `plexichat-macros` directly.
pub const fn check_macros_version(macros: &str) {
    if !str_eq(macros, VERSION) {
        panic!(
            "plexichat-macros and plexichat versions differ: depend on the `plexichat` facade only"
        );
    }
}

/// `a == b` in const context.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut same = a.len() == b.len();
    let mut index = 0;
    while same && index < a.len() {
        same = a[index] == b[index];
        index += 1;
    }
    same
}

/// Plugin names that core's own routes use below `/api/v1/` (`plexichat_rules`' list).
/// `#[plugin]` rejects them when written as `name = "..."`; [`check_plugin_name`] catches the
/// default name, the crate name, which only rustc knows.
pub use plexichat_rules::RESERVED_PLUGIN_NAMES;

/// Fails the build when a plugin's name is one of [`RESERVED_PLUGIN_NAMES`].
pub const fn check_plugin_name(name: &str) {
    let mut index = 0;
    while index < RESERVED_PLUGIN_NAMES.len() {
        if str_eq(name, RESERVED_PLUGIN_NAMES[index]) {
            panic!(
                "this plugin's name is one core's own routes use below /api/v1/; the name defaults to the crate name: set `#[plugin(name = \"...\")]`"
            );
        }
        index += 1;
    }
}

// Where a plugin's routes are mounted unless it sets `prefix`.
use plexichat_rules::PREFIX_ROOT;

/// The length of [`default_prefix`] for `name`, for the array type that holds it.
pub const fn default_prefix_len(name: &str) -> usize {
    PREFIX_ROOT.len() + name.len()
}

/// `/api/v1/<name with '-' for '_'>` as bytes, computed in const context because the
/// default name is the crate name, which only rustc knows; [`utf8`] makes it a `&str`.
pub const fn default_prefix<const N: usize>(name: &str) -> [u8; N] {
    let (root, name) = (PREFIX_ROOT.as_bytes(), name.as_bytes());
    let mut prefix = [0u8; N];
    let mut index = 0;
    while index < N {
        let byte = if index < root.len() {
            root[index]
        } else {
            name[index - root.len()]
        };
        prefix[index] = if byte == b'_' { b'-' } else { byte };
        index += 1;
    }
    prefix
}

/// The text of [`default_prefix`]; it only maps `_` to `-`, so it stays UTF-8.
pub const fn utf8(bytes: &'static [u8]) -> &'static str {
    match core::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => panic!("a default plugin prefix is not UTF-8"),
    }
}

/// Stands for one crate at the type level: `ID` is a hash of its name, computed by the
/// macros. `#[plugin]` implements [`CratePlugin`] for its crate's `Crate`, which is how a
/// `#[route]` elsewhere in the crate finds the plugin it belongs to without naming it.
pub struct Crate<const ID: u64>;

/// Implemented by `#[plugin]` for `Crate<hash of the crate's name>` with the plugin's type.
#[diagnostic::on_unimplemented(
    message = "this crate declares no `#[plugin]`, so its routes cannot use a plugin's state",
    label = "used here",
    note = "declare the crate's plugin with `#[plexichat::plugin]` on a struct"
)]
pub trait CratePlugin<P> {}

/// `P: DependsOn<Q>`: plugin `P` may use `Q`'s state and configuration, because `Q` is `P`
/// itself or one of its declared dependencies (which start before it and stop after it).
#[diagnostic::on_unimplemented(
    message = "plugin `{Self}` uses `{Q}` but does not declare it in `dependencies`",
    label = "`{Q}` is not a dependency of `{Self}`",
    note = "add it to the manifest: `#[plugin(dependencies = [{Q}])]`; only a dependency is sure to be running (it starts first and stops last) while this plugin serves"
)]
pub trait DependsOn<Q> {}

/// Compiles only when the plugin of the crate with hash `ID` may use plugin `Q`: what a
/// `#[route]` emits for each `PluginState<Q>` or `PluginConfig<Q>` argument.
pub const fn may_use<const ID: u64, Q, P>()
where
    Crate<ID>: CratePlugin<P>,
    P: DependsOn<Q>,
{
}

/// `P: OwnedBy<Crate<ID>>`: `P` is the plugin of the crate with hash `ID`. Implemented by
/// `#[plugin]`, so that a `PluginContext<Q>` elsewhere in the crate compiles only for its own
/// plugin.
#[diagnostic::on_unimplemented(
    message = "`PluginContext<{Self}>` is not this crate's plugin's context",
    label = "a plugin's code takes only its own plugin's context",
    note = "write `PluginContext<ThisCratesPlugin>`; another plugin's data is reached through its Rust API (a dependency) or its events, never its context"
)]
pub trait OwnedBy<C> {}

/// Compiles only when `Q` is the plugin of the crate with hash `ID`: what a `#[route]` or an
/// `#[on_event]` handler emits for a `PluginContext<Q>` argument.
pub const fn owns<const ID: u64, Q>()
where
    Q: OwnedBy<Crate<ID>>,
{
}

/// `P: TestedBy<Crate<ID>>`: `P` is the plugin of the crate with hash `ID`, as a plugin test
/// sees it. The same fact as [`OwnedBy`], told in a test's words: `#[plugin]` implements both.
#[diagnostic::on_unimplemented(
    message = "`TestContext<{Self}>` is another plugin's test context",
    label = "a plugin's tests take only their own plugin's `TestContext`",
    note = "write `&TestContext<ThisCratesPlugin>`; to test another plugin, call its routes through `context.app()` or put the test in that plugin's crate"
)]
pub trait TestedBy<C> {}

/// Compiles only when `Q` is the plugin of the crate with hash `ID`: what a
/// `#[plugin_test]` emits for its `&TestContext<Q>` argument.
pub const fn tests_own<const ID: u64, Q>()
where
    Q: TestedBy<Crate<ID>>,
{
}

// `#[on_event]`'s signature checks live beside the event types whose roles they decide.
pub use crate::abi::event::{
    Argument, InstanceFn, TwoArguments, Vetoable, one_argument_handler, one_argument_pre_handler,
    two_argument_handler, two_argument_pre_handler,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_up_to_the_first_character_that_is_not_a_digit_or_dot() {
        let check = |text: &str, expect: [u64; 3]| {
            assert_eq!(parse_version(text.as_bytes()), expect, "{text}");
        };
        check("1.2.3", [1, 2, 3]);
        check("0.1.0", [0, 1, 0]);
        check("10.20.30", [10, 20, 30]);
        check("1.2.3-beta.4", [1, 2, 3]);
        check("1.2.3+build.7", [1, 2, 3]);
        check("1.2", [1, 2, 0]);
        check("7", [7, 0, 0]);
        check("", [0, 0, 0]);
        check("1.2.3.4", [1, 2, 3]);
    }

    #[test]
    fn default_prefixes_replace_underscores_with_dashes() {
        const NAME: &str = "my_awesome_plugin";
        const BYTES: [u8; default_prefix_len(NAME)] = default_prefix(NAME);
        assert_eq!(std::str::from_utf8(&BYTES), Ok("/api/v1/my-awesome-plugin"));
    }
}
