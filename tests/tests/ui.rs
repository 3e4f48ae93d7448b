//! Compile-fail tests: each misuse of the macros is one clear error at the mistake.
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p plexichat-tests --test ui`
//! and review the diff.

// The expected messages are written against the linkme backend's expansion.
#[cfg(not(feature = "inventory"))]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    cases.pass("ui/pass/*.rs");
}
