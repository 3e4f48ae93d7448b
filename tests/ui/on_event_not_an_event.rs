use plexichat::prelude::*;

struct NotAnEvent;

#[on_event]
fn on_it(_event: &NotAnEvent) {}

fn main() {}
