//! The admin API behind the settings page: every plugin's settings with their schema (secrets
//! masked), and saving some of them: written to `<data>/settings.toml`, applied through the
//! transactional reload, and put back as they were if the reload refuses them.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::Hosted;
use crate::input::Json;
use plexichat_kernel::config::settings::{self, SaveError};
use plexichat_kernel::config::{self, is_secret_pointer};
use plexichat_kernel::error::ApiError;
use plexichat_kernel::runtime::{ReloadError, Runtime};

/// `GET /api/v1/admin/settings`: each plugin that has settings, with its section's schema
/// (and the definitions it refers to), its values in force with secrets masked (`null`),
/// which keys are secrets, and which the settings file sets.
pub(crate) async fn list(Hosted(runtime): Hosted) -> Json<Value> {
    let schema = config::schema(runtime.registry());
    let current = runtime.current_config();
    let data_dir = current.data.dir.clone();
    let plugins: Vec<Value> = runtime
        .registry()
        .plugins()
        .iter()
        .filter(|plugin| plugin.config.is_some())
        .map(|plugin| {
            let name = plugin.name;
            let values = current
                .plugin_values
                .get(name)
                .cloned()
                .unwrap_or(Value::Null);
            let (values, secrets) = masked(values);
            json!({
                "plugin": name,
                "description": plugin.description,
                "schema": schema["properties"]["plugins"]["properties"][name],
                "definitions": schema["definitions"][name],
                "values": values,
                "secrets": secrets,
                "overridden": settings::overridden(&data_dir, name),
            })
        })
        .collect();
    Json(json!({
        "file": settings::path(&data_dir).display().to_string(),
        "plugins": plugins,
    }))
}

/// `values` with the value of every secret key (at any depth) and every URL with a password
/// replaced by `null`, and the top-level keys that are or hold secrets.
fn masked(values: Value) -> (Value, Vec<String>) {
    let Value::Object(map) = values else {
        return (values, Vec::new());
    };
    let mut secrets = Vec::new();
    let mut out = Map::new();
    for (key, value) in map {
        let (value, holds) = mask(&key, value);
        if holds {
            secrets.push(key.clone());
        }
        out.insert(key, value);
    }
    (Value::Object(out), secrets)
}

fn mask(key: &str, value: Value) -> (Value, bool) {
    if is_secret_pointer(&format!("/{key}")) {
        return (Value::Null, true);
    }
    match value {
        Value::Object(map) => {
            let mut holds = false;
            let map = map
                .into_iter()
                .map(|(inner, value)| {
                    let (value, secret) = mask(&inner, value);
                    holds |= secret;
                    (inner, value)
                })
                .collect();
            (Value::Object(map), holds)
        }
        Value::Array(items) => {
            let mut holds = false;
            let items = items
                .into_iter()
                .map(|item| {
                    let (item, secret) = mask("", item);
                    holds |= secret;
                    item
                })
                .collect();
            (Value::Array(items), holds)
        }
        // A URL's password (`postgres://user:password@host`) is a secret wherever it is.
        Value::String(text) if plexichat_kernel::config::database::redact_url(&text) != text => {
            (Value::Null, true)
        }
        other => (other, false),
    }
}

/// Saves are one at a time: each reads the file, changes it and reloads.
fn one_at_a_time() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// `PUT /api/v1/admin/settings/{name}`: sets the keys of the body (a JSON object; `null`
/// removes a key from the settings file) and applies them.
pub(crate) async fn save(
    Hosted(runtime): Hosted,
    Path(name): Path<String>,
    Json(changes): Json<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    apply(runtime, &name, Some(changes)).await
}

/// `DELETE /api/v1/admin/settings/{name}`: removes the plugin's section from the settings
/// file, so `plexichat.toml` and the defaults apply again.
pub(crate) async fn reset(
    Hosted(runtime): Hosted,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    apply(runtime, &name, None).await
}

async fn apply(
    runtime: Runtime,
    name: &str,
    changes: Option<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let plugin = runtime
        .registry()
        .plugin(name)
        .ok_or_else(|| crate::unknown_plugin(runtime.registry(), name))?;
    if plugin.config.is_none() {
        return Err(ApiError::not_found(format!(
            "plugin `{name}` has no settings"
        )));
    }
    let _turn = one_at_a_time().lock().await;
    let data_dir = runtime.current_config().data.dir.clone();
    let previous =
        settings::save(&data_dir, name, changes.as_ref()).map_err(|error| match error {
            SaveError::Value { .. } => ApiError::bad_request(error.to_string()),
            SaveError::Io { .. } | SaveError::Invalid(_) => ApiError::internal(error),
        })?;
    let refused = match runtime.reload().await {
        Ok(_) => None,
        Err(ReloadError::NoSource) => Some(ApiError::unavailable(
            "this server was started without a configuration source, so saved settings cannot be applied",
        )),
        Err(ReloadError::Invalid(errors)) => Some(
            ApiError::bad_request(format!(
                "the settings of `{name}` are invalid; nothing was saved"
            ))
            .with_details(json!({ "issues": errors.issues })),
        ),
        Err(ReloadError::Vetoed(failures)) => Some(
            ApiError::new(
                StatusCode::CONFLICT,
                format!("a plugin refused the new settings of `{name}`; nothing was saved"),
            )
            .with_details(json!({ "failures": failures })),
        ),
    };
    if let Some(refused) = refused {
        previous.restore().map_err(ApiError::internal)?;
        return Err(refused);
    }
    tracing::info!(plugin = name, "settings saved from the admin API");
    let current = runtime.current_config();
    let values = current
        .plugin_values
        .get(name)
        .cloned()
        .unwrap_or(Value::Null);
    // A `PLEXICHAT__…` variable or a flag for the same key wins over the file: say which
    // saved values that keeps from taking effect.
    let kept_by_environment: Vec<&String> = changes
        .iter()
        .flatten()
        .filter(|(key, value)| !value.is_null() && values.get(key.as_str()) != Some(*value))
        .map(|(key, _)| key)
        .collect();
    let (values, secrets) = masked(values);
    Ok(Json(json!({
        "saved": true,
        "plugin": name,
        "values": values,
        "secrets": secrets,
        "overridden": settings::overridden(&data_dir, name),
        "kept_by_environment": kept_by_environment,
        "file": settings::path(&data_dir).display().to_string(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth_and_named_at_the_top() {
        let (values, secrets) = masked(json!({
            "interval": 5,
            "api_key": "hunter2",
            "upstream": { "url": "x", "password": "p" },
            "names": ["a"],
            "database_url": "postgres://app:hunter2@db/chat",
        }));
        assert_eq!(values["database_url"], Value::Null);
        assert_eq!(values["interval"], 5);
        assert_eq!(values["api_key"], Value::Null);
        assert_eq!(values["upstream"]["url"], "x");
        assert_eq!(values["upstream"]["password"], Value::Null);
        assert_eq!(secrets, ["api_key", "database_url", "upstream"]);
    }
}
