use plexichat::prelude::*;

#[derive(Default)]
struct JustAStruct;

#[event(name = "weather.report")]
struct WeatherReport;

#[on_event]
fn on_report(_plugin: &JustAStruct, _report: &WeatherReport) {}

fn main() {}
