use plexichat::prelude::*;

#[on_event]
fn on_nothing() {}

fn main() {}
