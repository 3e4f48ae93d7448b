use plexichat::prelude::*;

/// Reports the weather.
#[plugin]
#[derive(Default)]
struct WeatherPlugin;

#[event(name = "weather.report")]
struct WeatherReport;

#[on_event]
fn on_report(_report: &WeatherReport, _plugin: &WeatherPlugin) {}

fn main() {}
