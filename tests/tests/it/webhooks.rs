//! Webhook deliveries across a crash and across servers: the served binary is killed
//! (`SIGKILL`) while a delivery is in flight, started again on the same data folder, and the
//! delivery arrives, verified by the Standard Webhooks reference library, with one record of
//! success; killed again after a success, it sends nothing twice. Two servers on one
//! PostgreSQL database deliver every event once.

use std::process::Command;
use std::time::{Duration, Instant};

use plexichat_tests::request_json;
use serde_json::{Value, json};

use crate::binary::{Server, build_app, spawn_command};

#[path = "../../../plugins/webhooks/tests/support/mod.rs"]
mod support;

const TOKEN: &str = "webhooks-crash-admin-token-0123456789";

fn start(binary: &std::path::Path, dir: &std::path::Path) -> (Server, std::net::SocketAddr) {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("PLEXICHAT_ADMIN_TOKEN", TOKEN);
    let (server, addr, log) = spawn_command(command, dir);
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
    (server, addr)
}

fn kill_9(mut server: Server) {
    let status = Command::new("kill")
        .args(["-KILL", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = server.0.wait();
}

async fn delivery(addr: std::net::SocketAddr, endpoint: i64) -> Value {
    let (status, page) = request_json(
        addr,
        "GET",
        &format!("/api/v1/webhooks/{endpoint}/deliveries"),
        Some(TOKEN),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let id = &page["deliveries"][0]["id"];
    let (status, detail) = request_json(
        addr,
        "GET",
        &format!("/api/v1/webhooks/{endpoint}/deliveries/{id}"),
        Some(TOKEN),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    detail
}

#[test]
fn a_delivery_in_flight_at_a_crash_arrives_after_the_restart_once_recorded() {
    let binary = build_app("all", &["--all"]);
    let dir = plexichat_tests::scratch("webhooks-crash");
    std::fs::write(
        dir.join("plexichat.toml"),
        "[plugins.webhooks]\nallow_addresses = [\"127.0.0.1\"]\ntimeout_seconds = 2\nretry_base_seconds = 1\nretry_max_seconds = 2\n",
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = support::Receiver::start();
    // The first attempt hangs until the server is gone; the next is answered.
    runtime.block_on(receiver.script(
        "/crash",
        json!([{ "status": 200, "delay": 20 }, { "status": 200 }]),
    ));

    let (server, addr) = start(&binary, &dir);
    let (status, endpoint) = runtime.block_on(request_json(
        addr,
        "POST",
        "/api/v1/webhooks",
        Some(TOKEN),
        &json!({ "url": receiver.url("/crash"), "event_types": ["awesome.action.completed"] }),
    ));
    assert_eq!(status, 201, "{endpoint}");
    let id = endpoint["id"].as_i64().unwrap();
    runtime.block_on(receiver.secrets("/crash", &[endpoint["secret"].as_str().unwrap()]));
    let (status, action) = runtime.block_on(request_json(
        addr,
        "POST",
        "/api/v1/awesome/action",
        Some(TOKEN),
        &json!({ "note": "crash test" }),
    ));
    assert_eq!(status, 200, "{action}");
    let first = runtime.block_on(receiver.wait_for("/crash", 1, 20));
    assert_eq!(first.len(), 1, "the first attempt never arrived");
    kill_9(server);

    // Started again: the dead process's claim expires (timeout + 10 s) and the delivery is
    // sent again, with the same id.
    let (server, addr) = start(&binary, &dir);
    let both = runtime.block_on(receiver.wait_for("/crash", 2, 40));
    assert_eq!(both.len(), 2, "not delivered after the restart: {both:?}");
    assert_eq!(
        both[0]["headers"]["webhook-id"],
        both[1]["headers"]["webhook-id"]
    );
    for entry in &both {
        assert_eq!(entry["verified"], json!([true]), "{entry}");
    }
    let body: Value = serde_json::from_str(both[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "awesome.action.completed");
    assert_eq!(body["data"]["note"], "crash test");
    let deadline = Instant::now() + Duration::from_secs(10);
    let detail = loop {
        let detail = runtime.block_on(delivery(addr, id));
        if detail["status"] == "succeeded" || Instant::now() > deadline {
            break detail;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["attempts"], 2, "the lost attempt counts: {detail}");
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(
        log.len(),
        1,
        "one record, of the attempt that succeeded: {detail}"
    );
    assert_eq!(log[0]["outcome"], "succeeded");

    // Killed again after the success: nothing is sent twice.
    kill_9(server);
    let (_server, addr) = start(&binary, &dir);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runtime.block_on(receiver.wait_for("/crash", 3, 0)).len(), 2);
    let detail = runtime.block_on(delivery(addr, id));
    assert_eq!(
        detail["attempt_log"].as_array().unwrap().len(),
        1,
        "{detail}"
    );

    // A reload whose allowed addresses are not addresses is refused, naming the setting.
    std::fs::write(
        dir.join("plexichat.toml"),
        "[plugins.webhooks]\nallow_addresses = [\"localhost\"]\n",
    )
    .unwrap();
    let (status, refused) = runtime.block_on(request_json(
        addr,
        "POST",
        "/api/v1/admin/config/reload",
        Some(TOKEN),
        &Value::Null,
    ));
    assert_eq!(status, 409, "{refused}");
    assert!(refused.to_string().contains("allow_addresses"), "{refused}");
}

#[test]
fn two_servers_on_one_postgresql_deliver_each_event_once() {
    let binary = build_app("all", &["--all"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(plexichat::testing::fresh_postgres_database());
    let url = database.url().expose().to_string();
    let receiver = support::Receiver::start();
    let servers: Vec<(Server, std::net::SocketAddr)> = ["one", "two"]
        .iter()
        .map(|name| {
            let dir = plexichat_tests::scratch(&format!("webhooks-pair-{name}"));
            std::fs::write(
                dir.join("plexichat.toml"),
                format!(
                    "[data]\ndatabase = \"{url}\"\n\n[plugins.webhooks]\nallow_addresses = [\"127.0.0.1\"]\nconcurrency = 4\n"
                ),
            )
            .unwrap();
            start(&binary, &dir)
        })
        .collect();
    let (status, endpoint) = runtime.block_on(request_json(
        servers[0].1,
        "POST",
        "/api/v1/webhooks",
        Some(TOKEN),
        &json!({ "url": receiver.url("/pair"), "event_types": ["awesome.action.completed"] }),
    ));
    assert_eq!(status, 201, "{endpoint}");
    runtime.block_on(receiver.secrets("/pair", &[endpoint["secret"].as_str().unwrap()]));
    // Events through both servers at once; both deliver.
    const EVENTS: usize = 60;
    runtime.block_on(async {
        let posts = (0..EVENTS).map(|n| {
            let addr = servers[n % 2].1;
            async move {
                let (status, body) = request_json(
                    addr,
                    "POST",
                    "/api/v1/awesome/action",
                    Some(TOKEN),
                    &json!({ "note": format!("event {n}") }),
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
        });
        futures_util::future::join_all(posts).await;
    });
    let received = runtime.block_on(receiver.wait_for("/pair", EVENTS, 60));
    // A moment for a second delivery of any of them to show.
    std::thread::sleep(Duration::from_secs(2));
    let received = runtime.block_on(receiver.wait_for("/pair", received.len() + 1, 0));
    let mut ids: Vec<&str> = received
        .iter()
        .map(|entry| entry["headers"]["webhook-id"].as_str().unwrap())
        .collect();
    assert!(
        received
            .iter()
            .all(|entry| entry["verified"] == json!([true]))
    );
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS, "every event delivered");
    assert_eq!(count, EVENTS, "none twice");
    drop(servers);
}
