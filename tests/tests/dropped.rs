//! The silent-drop pitfall, shown and caught: this test crate has `awesome_audit` as a
//! dependency but never names it, so rustc does not link it and its registrations vanish.
//! The start-up check is what turns that into an error instead of a missing feature.

use plexichat::{Registry, RegistryError};

// Referenced, hence linked.
extern crate my_awesome_plugin as _;

#[test]
fn an_unreferenced_plugin_crate_is_missing_and_the_start_up_check_says_so() {
    let registry = Registry::linked().expect("registry");
    let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        ["my_awesome_plugin"],
        "awesome_audit was not referenced"
    );

    let error = registry
        .expect_exactly(&["my_awesome_plugin", "awesome_audit"])
        .unwrap_err();
    assert_eq!(
        error,
        RegistryError::Mismatch {
            missing: vec!["awesome_audit".into()],
            unexpected: vec![],
        }
    );
}
