//! Rebuilds this plugin when a file is added to, changed in or removed from a folder its
//! manifest embeds (`migrations`, `ui`, `docs`): `#[plugin]` reads those folders while the
//! crate compiles, and cargo watches only what it is told to.
fn main() {
    for folder in ["migrations", "ui", "docs"] {
        if std::path::Path::new(folder).is_dir() {
            println!("cargo::rerun-if-changed={folder}");
        }
    }
    println!("cargo::rerun-if-changed=build.rs");
}
