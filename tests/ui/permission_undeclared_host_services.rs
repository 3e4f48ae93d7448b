use plexichat::prelude::*;

/// Another plugin, not declared as a dependency.
#[derive(Default)]
pub struct Other;

impl plexichat::Plugin for Other {
    const NAME: &'static str = "other";
}

/// Declares no permission, then asks for the views of the other plugins and the test runner.
#[plugin]
#[derive(Default)]
pub struct Curious;

impl Lifecycle for Curious {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        // Every plugin's manifest and state: `plugins:read`.
        let _ = context.plugins();
        // The test runner: `tests:run`.
        let _ = context.tests();
        // Another plugin's instance or configuration: only a declared dependency's.
        let _ = context.dependency::<Other>();
        Ok(())
    }
}

fn main() {}
