use plexichat::prelude::*;

/// Audits the awesome plugin.
#[plugin(dependencies = [my_awesome_plugin])]
#[derive(Default)]
struct AuditPlugin;

fn main() {}
