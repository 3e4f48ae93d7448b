use plexichat::prelude::*;

/// Migrations create tables only the SQL pool reaches.
#[plugin(permissions = ["plugin:read"], migrations = "ui")]
#[derive(Default)]
pub struct Notes;

fn main() {}
