//! Files a plugin embeds at compile time: its UI pages' folders and `ui/static/` (served by
//! core under `/plugins/<name>/`) and its `docs/` folder (served by the `docs` plugin).
//!
//! `#[plugin]` reads the folders while expanding and embeds each file with
//! `include_bytes!`, so the binary needs nothing on disk and cargo rebuilds the plugin when
//! an embedded file changes. A file *added* to a folder is seen the next time the crate is
//! compiled for another reason (rustc has no stable way to watch a folder).

use std::fmt;

/// One embedded file.
#[derive(Clone, Copy)]
pub struct EmbeddedFile {
    /// `/`-separated path: relative to the crate for UI files (`ui/dashboard/index.html`),
    /// relative to the docs folder for docs (`README.md`, `guides/setup.md`).
    pub path: &'static str,
    /// The file's contents as they were when the plugin was compiled.
    pub bytes: &'static [u8],
}

/// Only the path and the size: a descriptor's `Debug` output must stay readable.
impl fmt::Debug for EmbeddedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedFile")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The `/`-separated path a page's file is stored under: `folder/rest`.
pub fn join(folder: &str, rest: &str) -> String {
    let folder = folder.trim_end_matches('/');
    if rest.is_empty() {
        folder.to_string()
    } else {
        format!("{folder}/{rest}")
    }
}
