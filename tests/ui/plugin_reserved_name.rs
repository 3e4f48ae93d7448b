use plexichat::prelude::*;

/// A plugin whose name would put its routes under core's `/api/v1/admin`.
#[plugin(name = "admin")]
#[derive(Default)]
struct Admin;

fn main() {}
