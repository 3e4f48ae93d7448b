use plexichat::prelude::*;

/// A misspelt permission and a made-up one.
#[plugin(permissions = ["plugin:read", "plugin:wirte", "root"])]
#[derive(Default)]
pub struct Notes;

fn main() {}
