//! The web surface in a real browser: a binary with every workspace plugin, served on
//! loopback, driven through Debian's headless Chromium by `tests/browser/web.test.mjs`, and
//! the chat client across a server restart by `tests/browser/chat.test.mjs`, which starts
//! and restarts the binary itself (playwright-core, installed from npm by this test when
//! missing). Screenshots go to `target/browser/`.
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

/// Runs `file`'s tests with `envs`; panics with the report unless every `test(` of the file
/// passed.
fn run_node_tests(tests: &Path, file: &str, envs: &[(&str, &Path)]) -> String {
    let mut command = Command::new("node");
    command
        .args(["--test", "--test-reporter=spec", file])
        .current_dir(tests);
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command.output().unwrap_or_else(|error| {
        panic!("cannot run node ({error}): the browser tests need Node.js")
    });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "{file} failed:\n{report}");
    let written = std::fs::read_to_string(tests.join(file))
        .unwrap()
        .matches("\ntest(\"")
        .count();
    assert!(
        report.contains(&format!("pass {written}\n")) && report.contains("fail 0"),
        "{written} tests written in {file}:\n{report}"
    );
    report
}

#[test]
fn the_chat_client_catches_up_after_the_server_restarts() {
    let chromium = xtask::test::chromium().unwrap_or_else(|error| panic!("{error}"));
    let tests = workspace_root().join("tests/browser");
    node_modules(&tests);
    let binary = crate::binary::build_app("all", &["--all"]);
    let data = plexichat_tests::scratch("chat-restart");
    let screenshots = workspace_root().join("target/browser");
    run_node_tests(
        &tests,
        "chat.test.mjs",
        &[
            ("PLEXICHAT_BIN", &binary),
            ("DATA_DIR", &data),
            ("CHROMIUM", &chromium),
            ("SCREENSHOTS", &screenshots),
        ],
    );
    assert!(screenshots.join("chat-restart.png").is_file());
}
