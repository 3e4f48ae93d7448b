use plexichat::prelude::*;

#[plugin]
fn my_plugin() {}

fn main() {}
