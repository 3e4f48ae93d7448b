//! `docs/chat-api.md` as a script: its `sh` blocks, in order, run by bash against a served
//! binary with every plugin, so the guide's commands are exactly what works.

use std::process::Command;

use plexichat_tests::workspace_root;

use crate::binary::serve_all_plugins;

#[test]
fn the_chat_api_guide_runs_verbatim() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/chat-api.md")).unwrap();
    let mut script = String::from("set -euo pipefail\n");
    let mut blocks = 0;
    let mut rest = guide.as_str();
    while let Some(start) = rest.find("```sh\n") {
        let body = &rest[start + 6..];
        let end = body.find("```").expect("every block is closed");
        script.push_str(&body[..end]);
        rest = &body[end + 3..];
        blocks += 1;
    }
    assert!(blocks >= 10, "the guide has its examples ({blocks} blocks)");

    let (_, server, addr, log) = serve_all_plugins("chat-docs", "chat-docs-admin-token-0123456789");
    let work = plexichat_tests::scratch("chat-docs-work");
    let output = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&work)
        .env("BASE", format!("http://{addr}"))
        .output()
        .expect("bash runs");
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the guide's commands failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        output.status,
        log.join().unwrap_or_default().join("\n")
    );
    // What the guide says each step shows.
    for expected in [
        "\"role\": \"admin\"",
        "invalid_credentials",
        "otpauth://totp/PlexiChat:bob?secret=",
        "mfa_required",
        "Announcements and chat",
        "Hello everyone! Release notes are coming on Thursday.",
        "[{\"emoji\":\"🎉\",\"count\":1,\"user_ids\":[2]}]",
        "Minutes of\n",
        "Minutes of the meeting",
        "1 channel.created",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
