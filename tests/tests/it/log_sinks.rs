//! Plugins' log sinks in the served binary: `log_files` (a `#[log_sink]`) writes core's and
//! plugins' records as JSON lines under the data directory, attributes each to its plugin,
//! and rotates by size, keeping `keep` files.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::serve_all_plugins_configured;

const TOKEN: &str = "log-sinks-admin-token-0123456789abcdef";

/// Every line of the current file and the rotated ones, oldest file first.
fn lines(folder: &std::path::Path) -> Vec<Value> {
    let mut all = Vec::new();
    for name in ["plexichat.jsonl.2", "plexichat.jsonl.1", "plexichat.jsonl"] {
        let Ok(text) = std::fs::read_to_string(folder.join(name)) else {
            continue;
        };
        for line in text.lines() {
            all.push(
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("{name}: {error}: {line}")),
            );
        }
    }
    all
}

/// Waits until the files hold a line `matches` accepts.
fn eventually(folder: &std::path::Path, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(line) = lines(folder).into_iter().find(|line| matches(line)) {
            return line;
        }
        assert!(Instant::now() < deadline, "never written: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn log_files_writes_attributed_json_lines_and_rotates() {
    let (_, dir, _server, addr, _log) = serve_all_plugins_configured(
        "log-sinks",
        TOKEN,
        "[plugins.log_files]\nmax_bytes = 4096\nkeep = 2\n",
    );
    let folder = dir.join("data/plugins/log_files");

    // Core's own line, with its fields.
    let serving = eventually(&folder, "serving", |line| line["message"] == "serving");
    assert_eq!(serving["plugin"], Value::Null, "{serving}");
    assert_eq!(serving["level"], "info");
    assert_eq!(serving["target"], "plexichat::server");
    assert_eq!(serving["fields"]["address"], addr.to_string());
    assert!(serving["at"].as_str().unwrap().ends_with('Z'), "{serving}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A plugin's warning: a refresh token presented twice.
        let (status, tokens) = plexichat_tests::request_json(
            addr,
            "POST",
            "/api/v1/auth/register",
            None,
            &json!({ "username": "logged", "password": "correct horse battery" }),
        )
        .await;
        assert_eq!(status, 201, "{tokens}");
        let refresh = json!({ "refresh_token": tokens["refresh_token"] });
        for expected in [200, 401] {
            let (status, body) =
                plexichat_tests::request_json(addr, "POST", "/api/v1/auth/refresh", None, &refresh)
                    .await;
            assert_eq!(status, expected, "{body}");
        }
    });
    let warning = eventually(&folder, "the refresh warning", |line| {
        line["message"]
            .as_str()
            .is_some_and(|message| message.contains("refresh token was presented again"))
    });
    assert_eq!(warning["plugin"], "accounts", "{warning}");
    assert_eq!(warning["level"], "warn");
    assert!(warning["fields"]["session_id"].is_i64(), "{warning}");

    // Enough admin actions to fill a file of 4 KiB twice over.
    runtime.block_on(async {
        for _ in 0..60 {
            let (status, body) = plexichat_tests::request_json(
                addr,
                "POST",
                "/api/v1/admin/config/reload",
                Some(TOKEN),
                &json!({}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    });
    eventually(&folder, "a reload", |line| {
        line["message"] == "configuration reloaded"
    });
    // Rotated: the current file and at most two older ones, none much past the limit (a
    // batch may cross it before the rotation).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !folder.join("plexichat.jsonl.2").exists() {
        assert!(Instant::now() < deadline, "never rotated twice");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!folder.join("plexichat.jsonl.3").exists());
    for name in ["plexichat.jsonl.1", "plexichat.jsonl.2"] {
        let size = std::fs::metadata(folder.join(name)).unwrap().len();
        assert!((4096..64 * 1024).contains(&size), "{name}: {size} bytes");
    }
}
