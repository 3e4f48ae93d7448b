//! A plugin without `name = "..."` is named after its crate, which only rustc knows, so a crate
//! named `plugins` or `admin` is caught in const evaluation. A trybuild case cannot choose its
//! crate name, so this calls the check every `#[plugin]` expansion calls, with such a name.

const _: () = ::plexichat::__private::check_plugin_name("plugins");

fn main() {}
