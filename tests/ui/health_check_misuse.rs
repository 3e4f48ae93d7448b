use plexichat::prelude::*;

/// Watches the pump.
#[plugin]
#[derive(Default)]
struct PumpPlugin;

/// Another plugin's event, not a plugin.
#[event(name = "pump.started")]
struct PumpStarted;

// No kind: liveness or readiness?
#[health_check]
fn no_kind() -> Result<(), String> {
    Ok(())
}

// Both kinds at once.
#[health_check(liveness, readiness)]
fn both_kinds() -> Result<(), String> {
    Ok(())
}

// Its argument must be the plugin or its context.
#[health_check(readiness)]
async fn not_a_plugin(_event: &PumpStarted) -> Result<(), String> {
    Ok(())
}

// What it returns must say healthy or not.
#[health_check(liveness)]
fn wrong_return(_plugin: &PumpPlugin) -> bool {
    true
}

// Fine.
#[health_check(liveness)]
async fn pumping(_context: &PluginContext<PumpPlugin>) -> Result<(), String> {
    Ok(())
}

fn main() {}
