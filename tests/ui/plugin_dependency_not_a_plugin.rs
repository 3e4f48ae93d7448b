use plexichat::prelude::*;

struct JustAStruct;

/// A plugin.
#[plugin(dependencies = [JustAStruct])]
#[derive(Default)]
struct MyPlugin;

fn main() {}
