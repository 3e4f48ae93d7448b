use plexichat::prelude::*;

/// Tests the pump.
#[plugin]
#[derive(Default)]
struct PumpPlugin;

// A time limit needs its unit.
#[plugin_test(timeout = 30)]
async fn bare_number() {}

// Not a duration.
#[plugin_test(timeout = "half a minute")]
async fn not_a_duration() {}

// Not one of the seed's categories.
#[plugin_test(category = speed)]
async fn unknown_category() {}

// A test takes its plugin's test context, not a plugin context.
#[plugin_test]
async fn wrong_argument(_context: &PluginContext<PumpPlugin>) {}

// The context by value.
#[plugin_test]
fn by_value(_context: TestContext<PumpPlugin>) {}

// What it returns must say passed or failed.
#[plugin_test]
fn wrong_return(_context: &TestContext<PumpPlugin>) -> bool {
    true
}

// Another plugin's context, and so its data.
#[plugin_test]
async fn another_plugins(_context: &TestContext<my_awesome_plugin::AwesomePlugin>) {}

// Fine: sync, async, with or without a context, with every key.
#[plugin_test(timeout = "5s", retries = 2, tags = ["smoke"], category = security)]
async fn pumping(context: &TestContext<PumpPlugin>) -> Result<(), String> {
    let _ = context.app().get("/health").await;
    Ok(())
}

#[plugin_test]
fn counting() {}

fn main() {}
