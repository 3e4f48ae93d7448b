//! The JSON Schema of `plexichat.toml`, made for exactly the plugins compiled in, and the
//! lookups into it that messages and the example share.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::abi::plugin::PluginDescriptor;
use crate::registry::Registry;

use super::{DataSection, EventsSection, HealthSection, ServerSection};

/// The JSON Schema of `plexichat.toml` for the plugins in `registry`.
pub fn schema(registry: &Registry) -> Value {
    schema_with_sections(registry, |_| true)
}

/// The schema with only the plugin sections `wanted` says: the validator needs only those of
/// the sections a document has (every section is optional), and compiling a thousand
/// plugins' sections to check a file that sets `[server] bind` was most of such a start.
pub(super) fn schema_with_sections(registry: &Registry, wanted: impl Fn(&str) -> bool) -> Value {
    // Draft 7 rather than 2020-12: editors' TOML and JSON language servers (taplo, VS Code)
    // support it fully, and its meta-schema, which the validator checks our schema against
    // once per process, costs a third as much to build: 2 ms of every start-up.
    let mut generator = SchemaSettings::draft07().into_generator();
    let names: Vec<&str> = registry.plugins().iter().map(|p| p.name).collect();
    let server = generator.subschema_for::<ServerSection>();
    let data = generator.subschema_for::<DataSection>();
    let events = generator.subschema_for::<EventsSection>();
    let health = generator.subschema_for::<HealthSection>();
    let mut definitions = generator.take_definitions(true);
    let mut plugins = Map::new();
    for plugin in registry.plugins().iter().filter(|p| wanted(p.name)) {
        plugins.insert(
            plugin.name.to_string(),
            plugin_schema(plugin, &mut definitions),
        );
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "plexichat.toml",
        "description": "PlexiChat configuration for the plugins compiled into this binary.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "disabled": {
                "description": "Compiled-in plugins to keep from starting; their dependents stop with them.",
                "type": "array",
                "uniqueItems": true,
                "items": { "enum": names },
            },
            "enabled": {
                "description": "Plugins declared with `auto_start = false` to start anyway.",
                "type": "array",
                "uniqueItems": true,
                "items": { "enum": names },
            },
            "server": server,
            "data": data,
            "events": events,
            "health": health,
            "plugins": {
                "description": "One section per compiled-in plugin, holding that plugin's own settings.",
                "type": "object",
                "additionalProperties": false,
                "properties": plugins,
            },
        },
        "definitions": definitions,
    })
}

/// `plugin`'s section, its named types under `definitions/<plugin>/`.
///
/// One generator per plugin: schemars names a second type called `Settings` `Settings2`,
/// trying every number from 2 up, so one shared generator made the schema of N plugins that
/// each call their type `Settings` cost O(N²) (100 ms of every start at 1000 plugins), and
/// gave operators `Settings417` to look up. Plugin names are snake case, so they cannot meet
/// core's type names (`ServerSection`) in `definitions`.
fn plugin_schema(plugin: &PluginDescriptor, definitions: &mut Map<String, Value>) -> Value {
    match plugin.config {
        Some(spec) => {
            let mut settings = SchemaSettings::draft07();
            settings.definitions_path =
                format!("/definitions/{}", pointer_token(plugin.name)).into();
            let mut generator = settings.into_generator();
            let schema = (spec.schema)(&mut generator).to_value();
            let own = generator.take_definitions(true);
            if !own.is_empty() {
                definitions.insert(plugin.name.to_string(), Value::Object(own));
            }
            schema
        }
        None => json!({
            "description": format!("`{}` has no settings.", plugin.name),
            "type": "object",
            "additionalProperties": false,
        }),
    }
}

/// `key` as one token of a JSON pointer (RFC 6901): `~` and `/` escaped.
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The `properties` of the schema node at `pointer`, following one `$ref` into
/// `definitions`.
pub(super) fn section_properties(schema: &Value, pointer: &str) -> Option<Map<String, Value>> {
    section_node(schema, pointer)?
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
}

/// The schema node at `pointer`, following one `$ref` into `definitions`.
pub(super) fn section_node<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let node = schema.pointer(pointer)?;
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => schema.pointer(reference.trim_start_matches('#')),
        None => Some(node),
    }
}
