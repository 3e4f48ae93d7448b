//! Configuration: every problem at once with its JSON pointer, environment overrides,
//! unknown sections, generated schema and example, and what plugins see.

use plexichat::config::{self, Config};
use plexichat::testing::TestApp;
use plexichat::{Registry, Runtime};
use serde_json::json;

fn registry() -> Registry {
    Registry::linked().expect("registry")
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Parses `text` with `vars`; returns the issues as displayed, or the valid config.
fn check(text: &str, vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    Config::parse(text, &env(vars), &registry(), "test.toml")
        .map_err(|errors| errors.issues.iter().map(ToString::to_string).collect())
}

#[test]
fn an_empty_file_means_the_defaults() {
    let config = check("", &[]).expect("valid");
    assert_eq!(config.server.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(config.server.request_timeout, "30s");
    assert_eq!(config.data.dir.to_str(), Some("./data"));
    assert_eq!(
        config.plugin_values["my_awesome_plugin"],
        json!({ "enabled": true, "interval": 60 })
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_pointer() {
    let issues = check(
        r#"
        disabled = ["nope"]
        [server]
        bind = "localhost"
        body_limit = 0
        colour = "blue"
        request_timeout = "soon"
        [plugins.my_awesome_plugin]
        enabled = "yes"
        interval = 0
        [plugins.ghost]
        x = 1
        "#,
        &[],
    )
    .unwrap_err();
    assert_eq!(
        issues,
        [
            "/plugins/ghost: no plugin `ghost` is compiled into this binary; compiled-in plugins: my_awesome_plugin, awesome_audit, test_harness",
            "/disabled/0: \"nope\" is not one of \"my_awesome_plugin\", \"awesome_audit\" or \"test_harness\"",
            "plugin `my_awesome_plugin`: /plugins/my_awesome_plugin/enabled: \"yes\" is not of type \"boolean\"",
            "plugin `my_awesome_plugin`: /plugins/my_awesome_plugin/interval: 0 is less than the minimum of 1",
            "/server/body_limit: 0 is less than the minimum of 1",
            "/server: Additional properties are not allowed ('colour' was unexpected)",
            "/server/bind: not an IP address and port; write e.g. \"127.0.0.1:8000\" or \"[::1]:8000\"",
            "/server/request_timeout: not a duration (expected number at 0); write e.g. \"30s\", \"500ms\" or \"2m\"",
        ]
    );
}

#[test]
fn issues_carry_the_plugin_and_the_value_found() {
    let errors = Config::parse(
        "[plugins.my_awesome_plugin]\ninterval = 7200\n",
        &[],
        &registry(),
        "test.toml",
    )
    .unwrap_err();
    let issue = &errors.issues[0];
    assert_eq!(issue.plugin.as_deref(), Some("my_awesome_plugin"));
    assert_eq!(issue.pointer, "/plugins/my_awesome_plugin/interval");
    assert_eq!(issue.found, Some(json!(7200)));
    assert!(
        errors.to_string().starts_with("test.toml has 1 problem:"),
        "{errors}"
    );
}

#[test]
fn a_plugin_without_settings_accepts_no_section_keys() {
    let issues = check("[plugins.awesome_audit]\nverbose = true\n", &[]).unwrap_err();
    assert_eq!(
        issues,
        [
            "plugin `awesome_audit`: /plugins/awesome_audit: this plugin has no settings; remove the section"
        ]
    );
}

#[test]
fn environment_overrides_beat_the_file_and_are_validated() {
    let file = "[plugins.my_awesome_plugin]\ninterval = 30\n";
    let config = check(
        file,
        &[
            ("PLEXICHAT__PLUGINS__MY_AWESOME_PLUGIN__INTERVAL", "5"),
            ("PLEXICHAT__SERVER__BIND", "\"0.0.0.0:9000\""),
            ("PLEXICHAT__DATA__DIR", "/srv/plexichat"),
            ("PLEXICHAT_ADMIN_TOKEN", "s3cret"),
            ("UNRELATED", "ignored"),
        ],
    )
    .expect("valid");
    assert_eq!(
        config.plugin_values["my_awesome_plugin"],
        json!({ "enabled": true, "interval": 5 })
    );
    assert_eq!(config.server.bind.to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.data.dir.to_str(),
        Some("/srv/plexichat"),
        "unquoted text is a string"
    );
    assert_eq!(config.server.admin_token.as_deref(), Some("s3cret"));

    let issues = check(
        file,
        &[("PLEXICHAT__PLUGINS__MY_AWESOME_PLUGIN__INTERVAL", "abc")],
    )
    .unwrap_err();
    assert_eq!(
        issues,
        [
            "plugin `my_awesome_plugin`: /plugins/my_awesome_plugin/interval: \"abc\" is not of type \"integer\""
        ]
    );
    let issues = check("", &[("PLEXICHAT__NOPE", "1")]).unwrap_err();
    assert_eq!(
        issues,
        ["/: Additional properties are not allowed ('nope' was unexpected)"]
    );
}

#[test]
fn toml_syntax_errors_say_where() {
    let issues = check("a = 1\nx = [\n", &[]).unwrap_err();
    assert_eq!(
        issues,
        ["/: not valid TOML at line 2, column 6: unclosed array, expected `]`"]
    );
}

#[test]
fn the_example_is_complete_and_valid() {
    let registry = registry();
    let example = config::example(&registry);
    assert!(example.contains("[plugins.my_awesome_plugin]"), "{example}");
    assert!(example.contains("# allowed: >= 1, <= 3600"), "{example}");
    let parsed = Config::parse(&example, &[], &registry, "example").expect("example is valid");
    let defaults = Config::defaults(&registry);
    assert_eq!(parsed.server, defaults.server);
    assert_eq!(parsed.plugin_values, defaults.plugin_values);
}

#[test]
fn the_schema_describes_exactly_the_compiled_in_plugins() {
    let schema = config::schema(&registry());
    let plugins = schema["properties"]["plugins"]["properties"]
        .as_object()
        .expect("plugins object");
    let names: Vec<&str> = plugins.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["awesome_audit", "my_awesome_plugin", "test_harness"]
    );
    let awesome = &schema["definitions"]["AwesomeConfig"]["properties"];
    assert_eq!(awesome["interval"]["minimum"], 1);
    assert_eq!(awesome["interval"]["maximum"], 3600);
    assert_eq!(awesome["enabled"]["default"], true);
}

/// Start-up skips the validator for an empty document (no file, no overrides) because the
/// schema accepts it; this keeps that shortcut honest, and checks the schema that such a
/// start-up never compiles.
#[test]
fn the_schema_is_valid_draft_7_and_accepts_an_empty_document() {
    let schema = config::schema(&registry());
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    if let Err(error) = jsonschema::meta::validate(&schema) {
        panic!("the generated schema breaks its meta-schema: {error}");
    }
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    assert!(validator.is_valid(&json!({})));
    assert!(!validator.is_valid(&json!({ "plugins": { "my_awesome_plugin": { "interval": 0 } } })));
}

#[tokio::test]
async fn plugins_see_their_configuration() {
    let config = check(
        "[plugins.my_awesome_plugin]\nenabled = false\ninterval = 5\n",
        &[],
    )
    .unwrap();
    let app = TestApp::new(Runtime::with_config(registry(), config));
    let (status, body) = app.get("/api/v1/awesome/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["enabled"], false);
    assert_eq!(body["config"], json!({ "enabled": false, "interval": 5 }));

    let (status, body) = app.post("/api/v1/awesome/action", None).await;
    assert_eq!(
        (status.as_u16(), body),
        (400, json!({ "error": "Plugin is disabled" }))
    );
}

fn runtime_with(text: &str) -> Runtime {
    Runtime::with_config(registry(), check(text, &[]).unwrap())
}

#[tokio::test]
async fn a_reload_applies_plugin_sections_and_the_disabled_list_at_once() {
    let runtime = runtime_with("");
    let new = check(
        "disabled = [\"awesome_audit\"]\n[plugins.my_awesome_plugin]\ninterval = 9\n",
        &[],
    )
    .unwrap();
    let report = runtime.apply_config(new).await.expect("applied");
    assert_eq!(report.plugins, ["my_awesome_plugin"]);
    assert_eq!(
        report.states,
        [("awesome_audit", plexichat::PluginStatus::Disabled)]
    );
    assert!(report.restart_required.is_empty());
    assert_eq!(
        runtime
            .config::<my_awesome_plugin::AwesomePlugin>()
            .unwrap()
            .interval,
        9
    );
    let harness = runtime.plugin::<crate::Harness>().unwrap();
    assert_eq!(harness.log(), ["config changed my_awesome_plugin"]);

    let restart = check("[server]\nbind = \"127.0.0.1:9\"\n", &[]).unwrap();
    let report = runtime.apply_config(restart).await.unwrap();
    assert_eq!(report.restart_required, ["server.bind"]);
}

#[tokio::test]
async fn a_vetoed_reload_keeps_the_old_configuration_everywhere() {
    let runtime = runtime_with("[plugins.my_awesome_plugin]\ninterval = 7\n");
    let unlucky = check(
        "disabled = [\"awesome_audit\"]\n[plugins.my_awesome_plugin]\ninterval = 13\n",
        &[],
    )
    .unwrap();
    let error = runtime.apply_config(unlucky).await.unwrap_err();
    match error {
        plexichat::runtime::ReloadError::Vetoed(failures) => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].handler, "veto_unlucky_interval");
            assert_eq!(failures[0].error, "interval 13 is unlucky");
        }
        other => panic!("expected a veto, got {other}"),
    }
    assert_eq!(
        runtime
            .config::<my_awesome_plugin::AwesomePlugin>()
            .unwrap()
            .interval,
        7
    );
    assert_eq!(
        runtime.status("awesome_audit"),
        Some(plexichat::PluginStatus::Running),
        "the disabled list of the refused configuration was not applied"
    );
}

#[tokio::test]
async fn reload_without_a_source_is_refused_over_http() {
    use std::sync::Arc;
    let registry = registry();
    let config = Config::defaults(&registry);
    let options = plexichat::server::ServerOptions {
        admin_token: Some(Arc::from("t")),
        ..config.server_options()
    };
    let app = TestApp::with_options(Runtime::with_config(registry, config), &options);
    let request = plexichat::axum::http::Request::post("/api/v1/admin/config/reload")
        .header("authorization", "Bearer t")
        .body(plexichat::axum::body::Body::empty())
        .unwrap();
    let (status, body) = app.send(request).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        "this server was started without a configuration source to reload"
    );
}
