use plexichat::prelude::*;

/// Reports the weather.
#[plugin]
#[derive(Default)]
struct WeatherPlugin;

#[on_event]
fn on_report(_plugin: &WeatherPlugin) {}

fn main() {}
