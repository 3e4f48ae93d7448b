//! The web surface in a real browser: a binary with every workspace plugin, served on
//! loopback, driven through Debian's headless Chromium by `tests/browser/web.test.mjs`
//! (playwright-core, installed from npm by this test when missing). Screenshots go to
//! `target/browser/`.
//!
//! Chromium and Node are required, never optional: without them this test fails and says how
//! to install them (`.ci/run` does).

use std::path::Path;
use std::process::Command;

use plexichat_tests::workspace_root;

use crate::binary::serve_all_plugins;

const TOKEN: &str = "browser-test-admin-token-0123456789";

/// `tests/browser/node_modules`, installed from the lock file when missing.
fn node_modules(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .unwrap_or_else(|error| {
            panic!("cannot run npm ({error}): the browser tests need Node.js and npm")
        });
    assert!(status.success(), "`npm ci` in {} failed", dir.display());
}

#[test]
fn the_web_surface_works_in_headless_chromium() {
    let chromium = xtask::test::chromium().unwrap_or_else(|error| panic!("{error}"));
    let tests = workspace_root().join("tests/browser");
    node_modules(&tests);
    let (_, server, addr, log) = serve_all_plugins("browser", TOKEN);

    let screenshots = workspace_root().join("target/browser");
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", "web.test.mjs"])
        .current_dir(&tests)
        .env("PLEXICHAT_URL", format!("http://{addr}"))
        .env("PLEXICHAT_ADMIN_TOKEN", TOKEN)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &screenshots)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run node ({error}): the browser tests need Node.js")
        });
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    drop(server);
    let log = log.join().unwrap_or_default();
    assert!(
        output.status.success(),
        "browser tests failed (screenshots in {}); server log:\n{}",
        screenshots.display(),
        log.join("\n")
    );
    // A run that skipped or lost a test must not pass: every `test(` of the file passed.
    let written = std::fs::read_to_string(tests.join("web.test.mjs"))
        .unwrap()
        .matches("\ntest(\"")
        .count();
    assert!(
        report.contains(&format!("pass {written}\n")) && report.contains("fail 0"),
        "{written} tests written:\n{report}"
    );
    assert!(screenshots.join("admin.png").is_file());
}
