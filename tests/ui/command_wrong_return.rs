use plexichat::prelude::*;

#[plugin]
#[derive(Default)]
pub struct Tools;

/// Greets.
#[plexichat::command]
async fn greet(context: CommandContext<Tools>) -> String {
    let _ = context;
    "hello".to_string()
}

fn main() {}
