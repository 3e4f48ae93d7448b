use plexichat::prelude::*;
use plexichat::serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
#[serde(crate = "plexichat::serde")]
struct NoSchema {
    level: u32,
}

/// A plugin whose config type has no JSON Schema.
#[plugin(config = NoSchema)]
#[derive(Default)]
struct MyPlugin;

fn main() {}
