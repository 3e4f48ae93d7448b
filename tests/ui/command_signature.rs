use plexichat::prelude::*;

#[plugin]
#[derive(Default)]
pub struct Tools;

// No doc comment, not async, and no context.
#[plexichat::command]
fn clean(limit: u32) -> Result<(), BoxError> {
    let _ = limit;
    Ok(())
}

fn main() {}
