//! How `#[plugin(config = T)]` describes a plugin's configuration type to the rest of the
//! program: its schema, its defaults, and how to parse a validated section into a `T`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use schemars::generate::SchemaGenerator;
use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How `#[plugin(config = T)]` describes `T` to the runtime; written by the macro.
pub struct ConfigSpec {
    /// Rust name of the configuration type, for messages.
    pub type_name: &'static str,
    /// `T`'s schema, its named types added to the generator (one per plugin).
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    /// `T::default()` as JSON, for `config example` and for plugins without a section.
    pub defaults: fn() -> Value,
    /// Deserialises a validated section into a `T`.
    pub parse: fn(Value) -> Result<Arc<dyn Any + Send + Sync>, String>,
}

impl fmt::Debug for ConfigSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name)
    }
}

#[doc(hidden)]
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

#[doc(hidden)]
pub fn defaults_of<T: Default + Serialize>() -> Value {
    serde_json::to_value(T::default()).unwrap_or(Value::Null)
}

#[doc(hidden)]
pub fn parse_as<T: DeserializeOwned + Send + Sync + 'static>(
    value: Value,
) -> Result<Arc<dyn Any + Send + Sync>, String> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map(|config| Arc::new(config) as Arc<dyn Any + Send + Sync>)
        .map_err(|error| match error.path().to_string().as_str() {
            "." => error.inner().to_string(),
            path => format!("{path}: {}", error.inner()),
        })
}
