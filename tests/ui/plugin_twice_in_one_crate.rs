use plexichat::prelude::*;

/// The first plugin.
#[plugin(name = "first")]
#[derive(Default)]
struct First;

mod nested {
    use plexichat::prelude::*;

    /// The second plugin.
    #[plugin(name = "second")]
    #[derive(Default)]
    pub struct Second;
}

fn main() {}
