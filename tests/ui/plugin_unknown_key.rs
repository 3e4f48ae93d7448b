use plexichat::prelude::*;

/// A plugin.
#[plugin(author = "me", colour = "blue")]
#[derive(Default)]
struct MyPlugin;

fn main() {}
