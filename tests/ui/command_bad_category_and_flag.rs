use plexichat::prelude::*;

#[plugin]
#[derive(Default)]
pub struct Tools;

/// Cleans up.
#[plexichat::command(category = "Dev Tools", dangerous = "yes", hidden = true)]
async fn clean(context: CommandContext<Tools>) -> Result<(), BoxError> {
    let _ = context;
    Ok(())
}

fn main() {}
