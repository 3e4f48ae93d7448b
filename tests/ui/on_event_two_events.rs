use plexichat::prelude::*;

#[event(name = "test.ping")]
struct Ping;

#[event(name = "test.pong")]
struct Pong;

#[on_event]
fn on_both(_ping: &Ping, _pong: &Pong) {}

fn main() {}
