use plexichat::prelude::*;

/// `backup = true` promises handlers the type does not have.
#[plugin(permissions = ["plugin:read"], backup = true)]
#[derive(Default)]
pub struct Notes;

fn main() {}
