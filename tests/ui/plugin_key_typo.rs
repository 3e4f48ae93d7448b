use plexichat::prelude::*;

/// A manifest key misspelled: one error, at the key, saying what was meant, and none at the
/// service the permission grants (the macro reads on as if the key were spelled right).
#[plugin(permisions = ["plugin:write"])]
#[derive(Default)]
struct Notes;

#[route(POST, "/notes")]
async fn add(context: PluginContext<Notes>) -> Result<(), ApiError> {
    context.kv().set("last", b"note").await?;
    Ok(())
}

fn main() {}
