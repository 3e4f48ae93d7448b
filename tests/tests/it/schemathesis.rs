//! The OpenAPI document against the server that publishes it: a binary with every workspace
//! plugin serves `/openapi.json`, which must equal `plexichat openapi`, validate against the
//! OpenAPI 3.1 schema (`openapi-spec-validator`), and hold under `schemathesis`: generated
//! requests to every operation get no 5xx and no answer that contradicts the document (status,
//! content type, headers, body schema).
//!
//! Both tools come from PyPI, pinned, installed by this test into `target/python/` when
//! missing (Python 3 with `venv` is required: `.ci/run` has it). The schemathesis report goes
//! to `target/schemathesis/`.

use std::path::PathBuf;
use std::process::{Command, Output};

use plexichat_tests::workspace_root;

use crate::binary::serve_all_plugins;

const TOKEN: &str = "schemathesis-admin-token-0123456789";
/// The tools and their versions; changing this list reinstalls them.
const TOOLS: &[&str] = &["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"];

/// `target/python/bin`, with [`TOOLS`] installed.
fn python_tools() -> PathBuf {
    let venv = workspace_root().join("target/python");
    let marker = venv.join("installed.txt");
    let wanted = TOOLS.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return venv.join("bin");
    }
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap_or_else(|error| panic!("cannot run python3 ({error}): these tests need Python 3"));
    assert!(
        status.success(),
        "`python3 -m venv` failed: install Python's venv module (`apt-get install python3-venv`)"
    );
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(TOOLS)
        .status()
        .expect("pip runs");
    assert!(status.success(), "`pip install {}` failed", TOOLS.join(" "));
    std::fs::write(&marker, wanted).unwrap();
    venv.join("bin")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_openapi_document_is_valid_and_the_server_keeps_to_it() {
    let tools = python_tools();
    let (binary, server, addr, log) = serve_all_plugins("schemathesis", TOKEN);

    // The CLI prints what the server serves.
    let printed = Command::new(&binary).arg("openapi").output().unwrap();
    assert!(printed.status.success(), "{}", text(&printed));
    let printed: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, served) = runtime.block_on(plexichat_tests::request(addr, "GET", "/openapi.json"));
    assert_eq!(status, 200);
    assert_eq!(
        printed, served,
        "`plexichat openapi` differs from /openapi.json"
    );

    let reports = workspace_root().join("target/schemathesis");
    std::fs::create_dir_all(&reports).unwrap();
    let file = reports.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&served).unwrap()).unwrap();
    let validated = Command::new(tools.join("openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "the document is not valid OpenAPI 3.1:\n{}",
        text(&validated)
    );

    // First as the operator (the admin token), then as a person signed in (the chat
    // routes answer only people), with a channel and a message to find. Disabling a plugin
    // makes its routes answer 503 by design, which the no-5xx check cannot tell from a
    // failure; disabling is tested elsewhere.
    let fuzzed = fuzz(
        &tools,
        addr,
        TOKEN,
        &["--exclude-operation-id", "admin.disable"],
    );
    let person = runtime.block_on(signed_in_person(addr));
    let as_person = fuzz(
        &tools,
        addr,
        &person,
        &[
            "--include-tag-regex",
            "^(accounts|channels|files|realtime)$",
            // Ending one's own sessions would leave the rest of the run signed out.
            "--exclude-operation-id-regex",
            "^accounts\\.(logout|end_session|end_other_sessions|change_password)$",
        ],
    );
    let (report, person_report) = (text(&fuzzed), text(&as_person));
    println!("{report}\n{person_report}");
    drop(server);
    let log = log.join().unwrap_or_default();
    for (run, output, report) in [
        ("as the operator", &fuzzed, &report),
        ("as a person", &as_person, &person_report),
    ] {
        assert!(
            output.status.success(),
            "schemathesis found problems {run} (report in {}); server log:\n{}",
            reports.display(),
            log.join("\n")
        );
        // Schemathesis tested operations: a run that tested nothing must not pass.
        assert!(report.contains("passed"), "{run}: {report}");
    }
}

/// Registers a person with a channel and a message; their access token.
async fn signed_in_person(addr: std::net::SocketAddr) -> String {
    use plexichat_tests::request_json;
    use serde_json::json;
    let (status, answer) = request_json(
        addr,
        "POST",
        "/api/v1/auth/register",
        None,
        &json!({"username": "fuzzer", "password": "a long enough password"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let token = answer["access_token"].as_str().unwrap().to_string();
    let (status, channel) = request_json(
        addr,
        "POST",
        "/api/v1/channels",
        Some(&token),
        &json!({"kind": "public", "name": "general"}),
    )
    .await;
    assert_eq!(status, 201, "{channel}");
    let (status, message) = request_json(
        addr,
        "POST",
        &format!("/api/v1/channels/{}/messages", channel["id"]),
        Some(&token),
        &json!({"body": "hello"}),
    )
    .await;
    assert_eq!(status, 201, "{message}");
    token
}

/// Runs schemathesis against the server with `token` as the bearer, and `extra` arguments.
fn fuzz(
    tools: &std::path::Path,
    addr: std::net::SocketAddr,
    token: &str,
    extra: &[&str],
) -> Output {
    let reports = workspace_root().join("target/schemathesis");
    Command::new(tools.join("schemathesis"))
        // It keeps a cache folder (`.schemathesis/`) where it runs: under target/, not in
        // the repository.
        .current_dir(&reports)
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "30",
            // Reproducible in CI; change it locally to look further.
            "--seed",
            "20261124",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
        ])
        .args(extra)
        .arg("--report-dir")
        .arg(&reports)
        .output()
        .expect("schemathesis runs")
}
