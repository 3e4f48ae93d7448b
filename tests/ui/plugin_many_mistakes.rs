use plexichat::prelude::*;

/// Every mistake is reported at once, each at its own token.
#[plugin(name = "Bad-Name", auto_start = "yes", prefix = "api", tags = "one")]
#[derive(Default)]
struct MyPlugin;

fn main() {}
