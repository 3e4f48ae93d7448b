use plexichat::prelude::*;

/// A plugin.
#[plugin(type = widget)]
#[derive(Default)]
struct MyPlugin;

fn main() {}
