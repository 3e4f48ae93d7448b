use plexichat::prelude::*;

#[event(name = "weather.report")]
struct WeatherReport;

#[on_event]
fn on_report(_report: &WeatherReport) -> bool {
    true
}

fn main() {}
