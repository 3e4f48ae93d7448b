use plexichat::prelude::*;

/// `lifecycle = true` promises hooks the type does not implement.
#[plugin(lifecycle = true)]
#[derive(Default)]
pub struct Counter;

fn main() {}
