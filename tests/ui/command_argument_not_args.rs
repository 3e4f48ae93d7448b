use plexichat::prelude::*;

#[plugin]
#[derive(Default)]
pub struct Tools;

/// Counts to a number.
#[plexichat::command]
async fn count(context: CommandContext<Tools>, limit: u32) -> Result<(), BoxError> {
    let _ = (context, limit);
    Ok(())
}

fn main() {}
