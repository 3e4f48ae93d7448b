use plexichat::prelude::*;
use plexichat::schemars::JsonSchema;
use plexichat::serde::Serialize;

#[derive(Default, Serialize, JsonSchema)]
#[serde(crate = "plexichat::serde")]
#[schemars(crate = "plexichat::schemars")]
struct NotDeserializable {
    level: u32,
}

/// A plugin whose config type cannot be read from the file.
#[plugin(config = NotDeserializable)]
#[derive(Default)]
struct MyPlugin;

fn main() {}
