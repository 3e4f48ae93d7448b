//! What the served binary's HTTP layer feeds to analytics: requests per plugin and status,
//! read from the counters the metrics keep and written every ten seconds, appear in the
//! operators' summary.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::serve_all_plugins_configured;

const TOKEN: &str = "analytics-http-admin-token-0123456789";

#[test]
fn requests_per_plugin_and_status_reach_the_summary() {
    let (_, _, _server, addr, _log) = serve_all_plugins_configured(
        "analytics-http",
        TOKEN,
        "[plugins.analytics]\nflush_seconds = 1\n",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for _ in 0..3 {
            let (status, _) = plexichat_tests::request(addr, "GET", "/api/v1/awesome/status").await;
            assert_eq!(status, 200);
        }
        let (status, _) = plexichat_tests::request(addr, "GET", "/api/v1/channels").await;
        assert_eq!(status, 401);
        let bearer = format!("Bearer {TOKEN}");
        let auth = [("authorization", bearer.as_str())];
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let (status, summary) =
                plexichat_tests::request_with(addr, "GET", "/api/v1/analytics/summary", &auth)
                    .await;
            assert_eq!(status, 200, "{summary}");
            let plugin = |name: &str| {
                summary["http_by_plugin"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|tally| tally["key"] == name)
                    .and_then(|tally| tally["total"].as_i64())
                    .unwrap_or(0)
            };
            let today: Value = summary["days"]
                .as_array()
                .unwrap()
                .last()
                .cloned()
                .unwrap_or_default();
            if plugin("my_awesome_plugin") >= 3 && plugin("channels") >= 1 {
                assert!(
                    today["http_client_errors"].as_i64().unwrap() >= 1,
                    "{summary}"
                );
                assert!(today["http_requests"].as_i64().unwrap() >= 4, "{summary}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the requests never reached analytics: {summary}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}
