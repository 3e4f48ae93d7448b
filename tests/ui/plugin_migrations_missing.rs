use plexichat::prelude::*;

/// Its migrations folder does not exist.
#[plugin(permissions = ["database"], migrations = "migrations")]
#[derive(Default)]
pub struct Notes;

fn main() {}
