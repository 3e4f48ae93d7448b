use plexichat::prelude::*;

/// Needs a PlexiChat from the future.
#[plugin(min_plexichat_version = "99.0.0")]
#[derive(Default)]
struct FromTheFuture;

/// Not a version at all.
mod other {
    use plexichat::prelude::*;

    /// A plugin with a malformed version.
    #[plugin(version = "one")]
    #[derive(Default)]
    pub struct Malformed;
}

fn main() {}
