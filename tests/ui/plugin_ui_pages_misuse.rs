use plexichat::prelude::*;

/// Each page's folder must exist in the crate and hold an `index.html`; a page name is one
/// URL segment, unique in the plugin, and `static` is taken. The docs folder, when named,
/// must exist.
#[plugin(
    ui_pages = [
        { name = "main", path = "ui/nowhere", title = "Missing folder" },
        { name = "empty", path = "../../../../tests/ui/pass", title = "No index.html" },
        { name = "Main Page", path = "../../../../tests/ui/pages/main", title = "Bad name" },
        { name = "static", path = "../../../../tests/ui/pages/main", title = "Reserved name" },
        { name = "home", path = "../../../../tests/ui/pages/main", title = "Home" },
        { name = "home", path = "../../../../tests/ui/pages/main", title = "Home again" },
    ],
    docs = "manual",
)]
#[derive(Default)]
pub struct Pages;

fn main() {}
