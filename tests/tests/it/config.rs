//! Configuration: every problem at once with its JSON pointer, environment overrides,
//! unknown sections, generated schema and example, and what plugins see.

use plexichat::testing::{TestApp, problem};
use plexichat_kernel::config::{self, Config};
use std::time::Duration;

use plexichat::{Registry, Secret};
use plexichat_kernel::runtime::Runtime;
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
    assert_eq!(config.server.request_timeout, Duration::from_secs(30));
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
            "/server/colour: unknown key `colour` in `[server]`; valid keys: admin_token, bind, body_limit, drain_timeout, header_read_timeout, idle_timeout, max_connections, max_streams, max_streams_per_client, metrics_bind, phase_timeout, ready_cache, request_timeout, stream_lifetime",
            "/server/bind: not an IP address and port; write e.g. \"127.0.0.1:8000\" or \"[::1]:8000\"",
            "/server/request_timeout: not a duration (expected number at 0); write e.g. \"30s\", \"500ms\" or \"2m\"",
        ]
    );
}

/// Each unknown key is one issue, at the key: the closest key of its section or the section
/// it belongs in, then every key the section takes. Unknown plugin names, in a section header
/// or in `disabled`, get the same suggestion; a value from the environment names its variable.
#[test]
fn unknown_keys_and_names_suggest_the_closest_and_list_the_valid_ones() {
    let case = |text: &str, vars: &[(&str, &str)], expect: &str| {
        assert_eq!(check(text, vars).unwrap_err(), [expect], "{text} {vars:?}");
    };
    let server_keys = "admin_token, bind, body_limit, drain_timeout, header_read_timeout, \
                       idle_timeout, max_connections, max_streams, max_streams_per_client, metrics_bind, phase_timeout, ready_cache, request_timeout, stream_lifetime";
    let top_level_keys = "data, disabled, enabled, events, health, plugins, server";
    case(
        "[server]\nbnid = \"0.0.0.0:1\"\n",
        &[],
        &format!(
            "/server/bnid: unknown key `bnid` in `[server]`; did you mean `bind`? valid keys: {server_keys}"
        ),
    );
    case(
        "[server]\nBody_Limit = 5\n",
        &[],
        &format!(
            "/server/Body_Limit: unknown key `Body_Limit` in `[server]`; did you mean `body_limit`? valid keys: {server_keys}"
        ),
    );
    case(
        "",
        &[("PLEXICHAT__SERVER__BNID", "0.0.0.0:1")],
        &format!(
            "/server/bnid: unknown key `bnid` in `[server]`; did you mean `bind`? valid keys: {server_keys} (set by PLEXICHAT__SERVER__BNID)"
        ),
    );
    case(
        "[plugins.my_awesome_plugin]\nintervall = 5\n",
        &[],
        "plugin `my_awesome_plugin`: /plugins/my_awesome_plugin/intervall: unknown key `intervall` in `[plugins.my_awesome_plugin]`; did you mean `interval`? valid keys: enabled, interval",
    );
    case(
        "bind = \"127.0.0.1:9\"\n",
        &[],
        &format!(
            "/bind: unknown top-level key `bind`; it belongs in `[server]`; valid keys: {top_level_keys}"
        ),
    );
    case(
        "[my_awesome_plugin]\ninterval = 5\n",
        &[],
        &format!(
            "/my_awesome_plugin: unknown top-level key `my_awesome_plugin`; a plugin's settings go in `[plugins.my_awesome_plugin]`; valid keys: {top_level_keys}"
        ),
    );
    case(
        "[data]\ninterval = 5\n",
        &[],
        "/data/interval: unknown key `interval` in `[data]`; it belongs in `[plugins.my_awesome_plugin]`; valid keys: database, dir",
    );
    case(
        "[plugins.my_awesome_plugn]\n",
        &[],
        "/plugins/my_awesome_plugn: no plugin `my_awesome_plugn` is compiled into this binary; did you mean `my_awesome_plugin`? compiled-in plugins: my_awesome_plugin, awesome_audit, test_harness",
    );
    case(
        "disabled = [\"awesome_audt\"]\n",
        &[],
        "/disabled/0: \"awesome_audt\" is not one of \"my_awesome_plugin\", \"awesome_audit\" or \"test_harness\"; did you mean \"awesome_audit\"?",
    );
}

/// Without a file, every issue comes from an override: the message says that it checked the
/// built-in defaults, and names the variable.
#[test]
fn without_a_file_messages_say_the_defaults_were_checked() {
    let errors = Config::load(
        &plexichat_kernel::config::ConfigFile::None,
        &env(&[("PLEXICHAT__DATA__DIRECTORY", "/srv")]),
        &[],
        &registry(),
    )
    .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "the configuration (built-in defaults, no file) has 1 problem:\n  \
         /data/directory: unknown key `directory` in `[data]`; valid keys: database, dir \
         (set by PLEXICHAT__DATA__DIRECTORY)"
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
    let issues = check("[plugins.test_harness]\nverbose = true\n", &[]).unwrap_err();
    assert_eq!(
        issues,
        [
            "plugin `test_harness`: /plugins/test_harness: this plugin has no settings; remove the section"
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
            (
                "PLEXICHAT_ADMIN_TOKEN",
                "s3cret-s3cret-s3cret-s3cret-s3cret",
            ),
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
    assert_eq!(
        config.server.admin_token.as_ref().map(Secret::expose),
        Some("s3cret-s3cret-s3cret-s3cret-s3cret")
    );

    let issues = check(
        file,
        &[("PLEXICHAT__PLUGINS__MY_AWESOME_PLUGIN__INTERVAL", "abc")],
    )
    .unwrap_err();
    assert_eq!(
        issues,
        [
            "plugin `my_awesome_plugin`: /plugins/my_awesome_plugin/interval: \"abc\" is not of type \"integer\" (set by PLEXICHAT__PLUGINS__MY_AWESOME_PLUGIN__INTERVAL)"
        ]
    );
    let issues = check("", &[("PLEXICHAT__NOPE", "1")]).unwrap_err();
    assert_eq!(
        issues,
        [
            "/nope: unknown top-level key `nope`; valid keys: data, disabled, enabled, events, health, plugins, server (set by PLEXICHAT__NOPE)"
        ]
    );
}

/// A problem with the whole file is shown with the file's name where other issues show
/// their JSON pointer.
#[test]
fn toml_syntax_errors_say_where_and_name_the_file() {
    let errors =
        Config::parse("a = 1\nx = [\n", &[], &registry(), "/etc/plexichat.toml").unwrap_err();
    assert_eq!(errors.issues[0].pointer, "");
    assert_eq!(
        errors.to_string(),
        "/etc/plexichat.toml has 1 problem:\n  \
         /etc/plexichat.toml: not valid TOML at line 2, column 6: unclosed array, expected `]`"
    );
}

#[test]
fn the_example_is_complete_and_valid() {
    let registry = registry();
    let example = config::example(&registry);
    assert!(example.contains("[plugins.my_awesome_plugin]"), "{example}");
    // Each section starts with its type's doc comment, written for the operator.
    for description in [
        "# `[server]`: how the HTTP server listens, what it accepts, and how long each phase may take.\n[server]\n",
        "# `[plugins.my_awesome_plugin]`: whether the plugin accepts actions, and how often its\n\
         # background task does a round.\n[plugins.my_awesome_plugin]\n",
        "# Seconds between two rounds of the background task; a reload applies from the next\n\
         # round.\n# allowed: >= 1, <= 3600\ninterval = 60\n",
    ] {
        assert!(example.contains(description), "{description} in {example}");
    }
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
    let awesome = &schema["definitions"]["my_awesome_plugin"]["AwesomeConfig"]["properties"];
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

/// Two plugins that both call their type `Settings` (as most do) each get their own schema:
/// under `definitions/<plugin>/`, with their own constraints, not `Settings` and `Settings2`.
#[test]
fn plugins_with_same_named_config_types_keep_their_own_schemas() {
    mod first {
        /// The first plugin's settings.
        #[derive(plexichat::schemars::JsonSchema, plexichat::serde::Serialize, Default)]
        #[schemars(crate = "plexichat::schemars")]
        #[serde(crate = "plexichat::serde")]
        pub(crate) struct Settings {
            /// At most 3.
            #[schemars(range(max = 3))]
            pub(crate) small: u32,
        }
    }
    mod second {
        /// The second plugin's settings.
        #[derive(plexichat::schemars::JsonSchema, plexichat::serde::Serialize, Default)]
        #[schemars(crate = "plexichat::schemars")]
        #[serde(crate = "plexichat::serde")]
        pub(crate) struct Settings {
            /// Some text.
            pub(crate) text: String,
        }
    }
    use plexichat::__private::{ConfigSpec, defaults_of, parse_as, schema_of};
    fn with_config(name: &'static str, spec: ConfigSpec) -> &'static plexichat::PluginDescriptor {
        let base = crate::registry::plugin(name, name, &[]);
        Box::leak(Box::new(plexichat::PluginDescriptor {
            config: Some(Box::leak(Box::new(spec))),
            ..*base
        }))
    }
    let registry = Registry::from_parts(
        vec![
            with_config(
                "alpha",
                ConfigSpec {
                    type_name: "first::Settings",
                    schema: schema_of::<first::Settings>,
                    defaults: defaults_of::<first::Settings>,
                    parse: parse_as::<serde_json::Value>,
                },
            ),
            with_config(
                "beta",
                ConfigSpec {
                    type_name: "second::Settings",
                    schema: schema_of::<second::Settings>,
                    defaults: defaults_of::<second::Settings>,
                    parse: parse_as::<serde_json::Value>,
                },
            ),
        ],
        vec![],
        vec![],
    )
    .unwrap();
    let schema = config::schema(&registry);
    let sections = &schema["properties"]["plugins"]["properties"];
    assert_eq!(sections["alpha"]["$ref"], "#/definitions/alpha/Settings");
    assert_eq!(sections["beta"]["$ref"], "#/definitions/beta/Settings");
    assert_eq!(
        schema["definitions"]["alpha"]["Settings"]["properties"]["small"]["maximum"],
        3
    );
    assert_eq!(
        schema["definitions"]["beta"]["Settings"]["properties"]["text"]["type"],
        "string"
    );
    if let Err(error) = jsonschema::meta::validate(&schema) {
        panic!("the generated schema breaks its meta-schema: {error}");
    }
    let issues = |text: &str| match Config::parse(text, &[], &registry, "test.toml") {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .issues
            .iter()
            .map(|issue| issue.pointer.clone())
            .collect(),
    };
    assert_eq!(
        issues("[plugins.alpha]\nsmall = 3\n[plugins.beta]\ntext = \"x\"\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        issues("[plugins.alpha]\nsmall = 4\n"),
        ["/plugins/alpha/small"]
    );
    assert_eq!(issues("[plugins.beta]\ntext = 4\n"), ["/plugins/beta/text"]);
    // The example reads each section's descriptions through its `$ref`.
    let example = config::example(&registry);
    assert!(example.contains("# At most 3.\n"), "{example}");
    assert!(example.contains("# Some text.\n"), "{example}");
}

#[tokio::test]
async fn plugins_see_their_configuration() {
    let config = check(
        "[plugins.my_awesome_plugin]\nenabled = false\ninterval = 5\n",
        &[],
    )
    .unwrap();
    let app = TestApp::new(Runtime::with_config(registry(), config));
    app.runtime.start().await;
    let (status, body) = app.get("/api/v1/awesome/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["enabled"], false);
    assert_eq!(body["config"], json!({ "enabled": false, "interval": 5 }));

    let (status, body) = app.post("/api/v1/awesome/action", ()).await;
    assert_eq!(
        (status.as_u16(), body),
        (
            400,
            problem(400, "bad_request", "Plugin is disabled", json!({}))
        )
    );
}

/// A started runtime with `text`.
async fn runtime_with(text: &str) -> Runtime {
    let runtime = Runtime::with_config(registry(), check(text, &[]).unwrap());
    assert!(runtime.start().await.is_empty());
    runtime
}

#[tokio::test]
async fn a_reload_applies_plugin_sections_and_the_disabled_list_at_once() {
    let runtime = runtime_with("").await;
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
    let runtime = runtime_with("[plugins.my_awesome_plugin]\ninterval = 7\n").await;
    let unlucky = check(
        "disabled = [\"awesome_audit\"]\n[plugins.my_awesome_plugin]\ninterval = 13\n",
        &[],
    )
    .unwrap();
    let error = runtime.apply_config(unlucky).await.unwrap_err();
    match error {
        plexichat_kernel::runtime::ReloadError::Vetoed(failures) => {
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
    let registry = registry();
    let config = Config::defaults(&registry);
    let options = plexichat_web::ServerOptions {
        admin_token: Some(Secret::new("t")),
        ..plexichat_web::ServerOptions::from(&config.server)
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

/// A reload over the admin API reports the same issues as `config check`, unknown keys
/// included, and names the file.
#[tokio::test]
async fn a_reload_over_http_explains_an_unknown_key() {
    let registry = registry();
    let config = Config::defaults(&registry);
    let options = plexichat_web::ServerOptions {
        admin_token: Some(Secret::new("t")),
        ..plexichat_web::ServerOptions::from(&config.server)
    };
    let source: plexichat_kernel::runtime::ConfigSource = std::sync::Arc::new(|registry| {
        Config::parse(
            "[plugins.my_awesome_plugin]\nintervl = 5\n",
            &[],
            registry,
            "plexichat.toml",
        )
    });
    let runtime = Runtime::with_config_source(registry, config, Some(source));
    let app = TestApp::with_options(runtime, &options);
    let request = plexichat::axum::http::Request::post("/api/v1/admin/config/reload")
        .header("authorization", "Bearer t")
        .body(plexichat::axum::body::Body::empty())
        .unwrap();
    let (status, body) = app.send(request).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "plexichat.toml is invalid; the previous configuration stays in effect"
    );
    assert_eq!(
        body["issues"],
        json!([{
            "plugin": "my_awesome_plugin",
            "pointer": "/plugins/my_awesome_plugin/intervl",
            "found": 5,
            "problem": "unknown key `intervl` in `[plugins.my_awesome_plugin]`; did you mean `interval`? valid keys: enabled, interval",
        }])
    );
}

#[test]
fn the_admin_token_is_taken_verbatim_and_the_dedicated_variable_wins() {
    let token = |vars: &[(&str, &str)]| {
        check("", vars)
            .unwrap()
            .server
            .admin_token
            .map(|token| token.expose().to_string())
    };
    // Values that would parse as a number or an array are taken as the text they are.
    let digits = "12345678901234567890123456789012";
    assert_eq!(
        token(&[("PLEXICHAT_ADMIN_TOKEN", digits)]).as_deref(),
        Some(digits)
    );
    let array = "[1,2,3,4,5,6,7,8,9,10,11,12,13,14]";
    assert_eq!(
        token(&[("PLEXICHAT__SERVER__ADMIN_TOKEN", array)]).as_deref(),
        Some(array)
    );
    // `true` is four bytes of text, too short to be a token: guessed at once.
    assert_eq!(
        check("", &[("PLEXICHAT_ADMIN_TOKEN", "true")]).unwrap_err(),
        [
            "/server/admin_token: the admin token is 4 bytes; it must be at least 32 (`openssl rand -hex 32` prints one), or leave it unset and the server writes one to <data>/admin_token (set by PLEXICHAT_ADMIN_TOKEN)"
        ]
    );
    assert_eq!(
        token(&[
            (
                "PLEXICHAT__SERVER__ADMIN_TOKEN",
                "from-the-generic-spelling"
            ),
            (
                "PLEXICHAT_ADMIN_TOKEN",
                "from-the-dedicated-variable-0123456789"
            ),
        ])
        .as_deref(),
        Some("from-the-dedicated-variable-0123456789")
    );
}

#[test]
fn validation_messages_never_echo_secrets_and_cut_long_values() {
    let errors = Config::parse(
        "[server]\nadmin_token = 987654321\n",
        &[],
        &registry(),
        "test.toml",
    )
    .unwrap_err();
    let text = format!("{errors} {}", serde_json::to_string(&errors).unwrap());
    assert!(!text.contains("987654321"), "{text}");
    assert_eq!(errors.issues[0].found, Some(json!("[redacted]")));
    assert_eq!(
        errors.issues[0].problem,
        "[redacted] is not of types \"null\", \"string\""
    );

    let long = "x".repeat(5000);
    let errors = Config::parse(
        &format!("[server]\nbind = \"{long}\"\n"),
        &[],
        &registry(),
        "test.toml",
    )
    .unwrap_err();
    let issue = &errors.issues[0];
    assert!(issue.problem.chars().count() <= 301, "{}", issue.problem);
    assert!(
        !issue.problem.contains("[redacted]"),
        "not a secret: {}",
        issue.problem
    );

    let errors = Config::parse(
        "[server]\nadmin_token = \"\"\n",
        &[],
        &registry(),
        "test.toml",
    )
    .unwrap_err();
    assert_eq!(
        errors.issues[0].problem, "\"\" is shorter than 1 character",
        "an empty secret has nothing to hide"
    );

    // Secrets at or below an unknown key: a misspelt secret key, an unknown table holding
    // one, an unknown plugin's section, an array of keys.
    let errors = Config::parse(
        "[server]\nadmin_tokn = \"hunter2-misspelt\"\n[server.extra]\ntoken = \"hunter2-in-a-table\"\n\
         [plugins.ghost]\napi_keys = [\"hunter2-in-a-list\"]\npassword = 12345678\n",
        &[],
        &registry(),
        "test.toml",
    )
    .unwrap_err();
    let text = format!("{errors} {}", serde_json::to_string(&errors).unwrap());
    for secret in ["hunter2", "12345678"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let found = |pointer: &str| {
        let issue = errors
            .issues
            .iter()
            .find(|issue| issue.pointer == pointer)
            .unwrap_or_else(|| panic!("no issue at {pointer}: {errors}"));
        issue.found.clone()
    };
    assert_eq!(found("/server/admin_tokn"), Some(json!("[redacted]")));
    assert_eq!(
        found("/server/extra"),
        Some(json!({ "token": "[redacted]" }))
    );
    assert_eq!(
        found("/plugins/ghost"),
        Some(json!({ "api_keys": "[redacted]", "password": "[redacted]" }))
    );
    assert_eq!(
        issue
            .found
            .as_ref()
            .unwrap()
            .as_str()
            .unwrap()
            .chars()
            .count(),
        101
    );
}

#[test]
fn no_debug_output_shows_the_admin_token() {
    let config = check(
        "",
        &[(
            "PLEXICHAT_ADMIN_TOKEN",
            "hunter2-known-token-0123456789-0123456789",
        )],
    )
    .unwrap();
    let options = plexichat_web::ServerOptions::from(&config.server);
    for text in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{:?}", config.server),
        format!("{options:?}"),
        format!("{options:#?}"),
    ] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert_eq!(
        options.admin_token.as_ref().map(Secret::expose),
        Some("hunter2-known-token-0123456789-0123456789")
    );
}

#[test]
fn command_line_flags_are_validated_like_the_file_and_named_in_issues() {
    use plexichat_kernel::config::Flag;
    let flags = [
        Flag::integer("--body-limit", "/server/body_limit", 0),
        Flag::text("--request-timeout", "/server/request_timeout", "soon"),
    ];
    let errors = Config::parse_with_flags("", &[], &flags, &registry(), "test.toml").unwrap_err();
    let issues: Vec<String> = errors.issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        issues,
        [
            "/server/body_limit: 0 is less than the minimum of 1 (set by --body-limit)",
            "/server/request_timeout: not a duration (expected number at 0); write e.g. \"30s\", \"500ms\" or \"2m\" (set by --request-timeout)",
        ]
    );
    let flags = [Flag::integer("--body-limit", "/server/body_limit", 10)];
    let config = Config::parse_with_flags(
        "[server]\nbody_limit = 99\n",
        &[("PLEXICHAT__SERVER__BODY_LIMIT".into(), "77".into())],
        &flags,
        &registry(),
        "test.toml",
    )
    .unwrap();
    assert_eq!(
        config.server.body_limit, 10,
        "flags beat the file and the environment"
    );
}

#[test]
fn a_plugin_cannot_be_both_enabled_and_disabled() {
    let issues = check(
        "enabled = [\"awesome_audit\"]\ndisabled = [\"awesome_audit\"]\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        issues,
        ["/enabled: `awesome_audit` is both in `disabled` and in `enabled`; keep it in one"]
    );
}

#[test]
fn a_reload_refuses_a_file_that_went_missing_or_empty_and_any_huge_file() {
    use plexichat_kernel::config::ConfigFile;
    let dir = plexichat_tests::scratch("reload-files");
    let path = dir.join("plexichat.toml");
    let file = ConfigFile::Found(path.clone());
    let registry = registry();
    let problem = |result: Result<Config, plexichat_kernel::config::ConfigErrors>| {
        result.unwrap_err().issues[0].problem.clone()
    };

    std::fs::write(&path, "").unwrap();
    assert!(
        Config::load(&file, &[], &[], &registry).is_ok(),
        "empty at start: defaults"
    );
    assert!(
        problem(Config::reload(&file, &[], &[], &registry))
            .starts_with("the file is empty; refusing to replace the running configuration")
    );
    std::fs::remove_file(&path).unwrap();
    assert!(
        problem(Config::reload(&file, &[], &[], &registry)).starts_with("cannot read the file")
    );
    std::fs::write(&path, format!("# {}\n", "x".repeat(2 * 1024 * 1024))).unwrap();
    assert_eq!(
        problem(Config::reload(&file, &[], &[], &registry)),
        "the file is larger than 1048576 bytes; a configuration is a few kilobytes"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Start-up skips the validator when there is no file (the defaults are trusted), so each
/// plugin's `Default` must satisfy its own schema: checked here for every compiled-in plugin.
#[test]
fn every_plugins_default_configuration_passes_its_own_schema() {
    let registry = registry();
    let schema = config::schema(&registry);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut checked = Vec::new();
    for plugin in registry.plugins() {
        let Some(spec) = plugin.config else {
            continue;
        };
        let document = json!({ "plugins": { plugin.name: (spec.defaults)() } });
        let problems: Vec<String> = validator
            .iter_errors(&document)
            .map(|error| error.to_string())
            .collect();
        assert!(problems.is_empty(), "{}: {problems:?}", plugin.name);
        checked.push(plugin.name);
    }
    assert_eq!(checked, ["my_awesome_plugin", "awesome_audit"]);
}

/// One environment variable at a time: the value it leaves in the validated configuration
/// (read back as JSON at `pointer`), or the issue it causes.
#[test]
fn environment_overrides_as_a_table() {
    let check =
        |name: &str, value: &str, pointer: &str, expect: Result<serde_json::Value, &str>| {
            let outcome = Config::parse("", &env(&[(name, value)]), &registry(), "test.toml");
            let actual = match outcome {
                Ok(config) => {
                    let document = json!({
                        "server": {
                            "bind": config.server.bind.to_string(),
                            "body_limit": config.server.body_limit,
                            "admin_token": config.server.admin_token.as_ref().map(Secret::expose),
                        },
                        "plugins": config.plugin_values,
                        "disabled": config.disabled,
                    });
                    Ok(document.pointer(pointer).cloned().unwrap_or_default())
                }
                Err(errors) => Err(errors.issues[0].to_string()),
            };
            let expect = expect.map_err(String::from);
            assert_eq!(actual, expect, "{name}={value}");
        };
    check(
        "PLEXICHAT__SERVER__BODY_LIMIT",
        "2048",
        "/server/body_limit",
        Ok(json!(2048)),
    );
    check(
        "plexichat__server__body_limit",
        "2048",
        "/server/body_limit",
        Ok(json!(33554432)),
    );
    check(
        "PLEXICHAT__SERVER__BIND",
        "127.0.0.1:9",
        "/server/bind",
        Ok(json!("127.0.0.1:9")),
    );
    check(
        "PLEXICHAT__DISABLED",
        "[\"awesome_audit\"]",
        "/disabled",
        Ok(json!(["awesome_audit"])),
    );
    check(
        "PLEXICHAT__PLUGINS__MY_AWESOME_PLUGIN__ENABLED",
        "false",
        "/plugins/my_awesome_plugin/enabled",
        Ok(json!(false)),
    );
    check(
        "PLEXICHAT_ADMIN_TOKEN",
        "0x10000000000000000000000000000000",
        "/server/admin_token",
        Ok(json!("0x10000000000000000000000000000000")),
    );
    check(
        "PLEXICHAT__SERVER____BIND",
        "x",
        "",
        Err("/server//bind: environment override has an empty segment; separate levels with `__`"),
    );
    check(
        "PLEXICHAT__SERVER__BODY_LIMIT",
        "lots",
        "",
        Err(
            "/server/body_limit: \"lots\" is not of type \"integer\" (set by PLEXICHAT__SERVER__BODY_LIMIT)",
        ),
    );
}

#[test]
fn durations_must_be_positive_and_at_most_a_year_and_tokens_sendable() {
    let issues = check(
        "[server]\nheader_read_timeout = \"0s\"\nidle_timeout = \"400days\"\nready_cache = \"0s\"\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        issues,
        [
            "/server/header_read_timeout: must be longer than zero",
            "/server/idle_timeout: must be at most a year",
        ]
    );
    let issues = check("", &[("PLEXICHAT_ADMIN_TOKEN", "s3cret-token\n")]).unwrap_err();
    assert_eq!(
        issues,
        [
            "/server/admin_token: the admin token must be visible ASCII without spaces (a trailing newline, say, could never be sent in an `Authorization` header) (set by PLEXICHAT_ADMIN_TOKEN)"
        ]
    );
}

/// The settings page's API: a plugin's settings are saved to `<data>/settings.toml` (read over
/// `plexichat.toml`), checked with the messages `config check` gives, applied through the
/// reload, kept across a restart, and put back when refused.
#[tokio::test]
async fn settings_saved_through_the_admin_api_are_checked_applied_and_kept() {
    let registry = registry();
    let dir = plexichat::testing::fresh_dir("settings");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plexichat.toml");
    std::fs::write(
        &file,
        format!(
            "[data]\ndir = \"{}\"\n[plugins.my_awesome_plugin]\ninterval = 60\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let located = config::ConfigFile::Given(file.clone());
    let load = move |registry: &Registry| Config::load(&located, &[], &[], registry);
    let config = load(&registry).unwrap();
    let options = plexichat_web::ServerOptions {
        admin_token: Some(Secret::new("settings-token-0123456789-0123456789")),
        ..plexichat_web::ServerOptions::from(&config.server)
    };
    let source: plexichat_kernel::runtime::ConfigSource = std::sync::Arc::new(load.clone());
    let runtime = Runtime::with_config_source(registry.clone(), config, Some(source));
    let app = TestApp::with_options(runtime, &options);
    assert!(app.runtime.start().await.is_empty());
    let settings_file = dir.join("data").join(config::settings::SETTINGS_FILE);

    let (status, listed) = app
        .request("GET", "/api/v1/admin/settings")
        .admin()
        .send()
        .await;
    assert_eq!(status, 200, "{listed}");
    let awesome = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plugin| plugin["plugin"] == "my_awesome_plugin")
        .unwrap()
        .clone();
    assert_eq!(awesome["values"]["interval"], 60);
    assert_eq!(awesome["overridden"], json!([]));
    assert!(awesome["schema"].is_object(), "{awesome}");

    // Out of bounds: the message `config check` gives for the same file, and nothing saved.
    let (status, refused) = app
        .request("PUT", "/api/v1/admin/settings/my_awesome_plugin")
        .admin()
        .json(&json!({ "interval": 0 }))
        .send()
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(!settings_file.exists(), "a refused setting was kept");
    std::fs::create_dir_all(settings_file.parent().unwrap()).unwrap();
    std::fs::write(
        &settings_file,
        "[plugins.my_awesome_plugin]\ninterval = 0\n",
    )
    .unwrap();
    let check = load(&registry).unwrap_err();
    assert_eq!(refused["issues"][0]["problem"], check.issues[0].problem);
    assert!(check.issues[0].problem.contains("settings.toml"), "{check}");
    std::fs::remove_file(&settings_file).unwrap();

    // Saved: applied at once, kept readable by the owner only, and read again at a restart.
    let (status, saved) = app
        .request("PUT", "/api/v1/admin/settings/my_awesome_plugin")
        .admin()
        .json(&json!({ "interval": 7 }))
        .send()
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["overridden"], json!(["interval"]));
    assert_eq!(
        app.runtime
            .config::<my_awesome_plugin::AwesomePlugin>()
            .unwrap()
            .interval,
        7
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&settings_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let restarted = load(&registry).unwrap();
    assert_eq!(
        restarted.plugin_values["my_awesome_plugin"]["interval"], 7,
        "a restart lost the saved setting"
    );

    // Back to plexichat.toml.
    let (status, reset) = app
        .request("DELETE", "/api/v1/admin/settings/my_awesome_plugin")
        .admin()
        .send()
        .await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["values"]["interval"], 60);
    assert_eq!(reset["overridden"], json!([]));

    // Admin only.
    let (status, _) = app
        .request("PUT", "/api/v1/admin/settings/my_awesome_plugin")
        .json(&json!({ "interval": 9 }))
        .send()
        .await;
    assert_eq!(status, 401);
    app.runtime.shutdown().await;
}
