use plexichat::prelude::*;

/// Reports the weather.
#[plugin]
#[derive(Default)]
struct WeatherPlugin;

#[event(name = "weather.report")]
struct WeatherReport {
    text: String,
}

#[event(name = "weather.alert", vetoable)]
struct WeatherAlert {
    text: String,
}

// Not declared `vetoable`: nothing proposes it, so nothing could be vetoed.
#[on_event(pre)]
fn screen_report(report: &mut WeatherReport) {
    report.text.clear();
}

#[on_event(pre, priority = 5)]
fn screen_report_as_plugin(_plugin: &WeatherPlugin, _report: &WeatherReport) -> Result<(), String> {
    Ok(())
}

// Only a pre-handler may change the event it is given.
#[on_event]
fn rewrite_alert(alert: &mut WeatherAlert) {
    alert.text.clear();
}

// Fine: a pre-handler of a vetoable event, and a post-handler of it.
#[on_event(pre)]
fn screen_alert(alert: &mut WeatherAlert) -> Result<(), String> {
    if alert.text.is_empty() { Err("empty".to_string()) } else { Ok(()) }
}

#[on_event]
fn alert_sent(_plugin: &WeatherPlugin, _alert: &WeatherAlert) {}

fn main() {}
