//! State resolution as a table: the operator's wishes and init failures, resolved against
//! dependencies in start order, give one target per plugin; and the reload rule for admin
//! decisions.

use std::collections::BTreeSet;

use plexichat::Registry;
use plexichat::state::{PluginStatus, Target, Wishes, resolve};

use crate::registry::plugin;

/// `a` ← `b` ← `c` (each depends on the one before), and `d` alone.
fn registry() -> Registry {
    Registry::from_parts(
        vec![
            plugin("a", "a", &[]),
            plugin("b", "b", &["a"]),
            plugin("c", "c", &["b"]),
            plugin("d", "d", &[]),
        ],
        vec![],
        vec![],
    )
    .unwrap()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_string()).collect()
}

/// Resolves `off` (the file's wishes) and `failed`, and renders each plugin as
/// `name:state` with `*` marking the ones the operator wants.
fn check(off: &[&str], failed: &[&str], expect: &str) {
    let wishes = Wishes {
        file_off: names(off),
        failed: failed
            .iter()
            .map(|name| (name.to_string(), "boom".to_string()))
            .collect(),
        ..Wishes::default()
    };
    let rendered: Vec<String> = resolve(&registry(), &wishes)
        .into_iter()
        .map(|(name, resolved)| {
            let state = match resolved.target {
                Target::Run => "run".to_string(),
                Target::Down(PluginStatus::DisabledBecauseDependency { dependency }) => {
                    format!("dep({dependency})")
                }
                Target::Down(status) => status.name().to_string(),
            };
            let wanted = if resolved.wanted { "*" } else { "" };
            format!("{name}:{state}{wanted}")
        })
        .collect();
    assert_eq!(rendered.join(" "), expect, "off {off:?}, failed {failed:?}");
}

#[test]
fn wishes_and_failures_resolve_along_dependencies() {
    check(&[], &[], "a:run* b:run* c:run* d:run*");
    check(&["a"], &[], "a:disabled b:dep(a) c:dep(b) d:run*");
    check(&["b"], &[], "a:run* b:disabled c:dep(b) d:run*");
    check(&["c", "d"], &[], "a:run* b:run* c:disabled d:disabled");
    // A failed plugin is still wanted, so it and its dependents make the server not ready.
    check(&[], &["a"], "a:failed* b:dep(a)* c:dep(b)* d:run*");
    check(&[], &["b"], "a:run* b:failed* c:dep(b)* d:run*");
    // Turning a failed plugin off is what the operator wants: it no longer counts.
    check(&["a"], &["a"], "a:disabled b:dep(a) c:dep(b) d:run*");
}

/// `(file_off before, admin decisions, file_off after, plugins off after)`.
#[test]
fn admin_decisions_outlive_reloads_unless_the_file_changes_about_that_plugin() {
    let check = |before: &[&str], admin: &[(&str, bool)], after: &[&str], expect: &[&str]| {
        let mut wishes = Wishes {
            file_off: names(before),
            ..Wishes::default()
        };
        for (plugin, on) in admin {
            wishes.set(plugin, *on);
        }
        wishes.apply_file(names(after));
        let off: Vec<&str> = ["a", "b", "c", "d"]
            .into_iter()
            .filter(|plugin| wishes.is_off(plugin))
            .collect();
        assert_eq!(off, expect, "{before:?} + admin {admin:?} → file {after:?}");
    };
    check(&[], &[("a", false)], &[], &["a"]);
    check(&[], &[("a", false)], &["a"], &["a"]);
    check(&["a"], &[("a", true)], &["a"], &[]);
    check(&["a"], &[("a", true)], &[], &[]);
    check(&[], &[("a", false)], &["b"], &["a", "b"]);
    check(&["a"], &[("a", true)], &["a", "b"], &["b"]);
    check(&["a", "b"], &[("a", true)], &["b"], &["b"]);
}

#[test]
fn enabling_forgets_a_failure_so_init_is_retried() {
    let mut wishes = Wishes::default();
    wishes.failed.insert("a".into(), "boom".into());
    wishes.set("a", true);
    assert!(wishes.failed.is_empty());
    assert!(!wishes.is_off("a"));
}
