//! `ui_pages` folders and the docs folder of `#[plugin]`: read while expanding, checked, and
//! embedded with `include_bytes!` (which also makes cargo rebuild the plugin when one of the
//! files changes).

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::quote;
use syn::LitStr;

/// The folder of shared assets served at `/plugins/<name>/static/`, embedded when it exists.
pub(crate) const STATIC_FOLDER: &str = "ui/static";

/// The docs folder embedded when `docs` is not given and the folder exists.
pub(crate) const DEFAULT_DOCS: &str = "docs";

/// One file to embed: the path it is served under and where it is on disk.
#[derive(Debug, PartialEq)]
pub(crate) struct File {
    /// `/`-separated; relative to the crate for UI files, to the docs folder for docs.
    pub(crate) key: String,
    pub(crate) absolute: PathBuf,
}

/// The crate being compiled.
pub(crate) fn crate_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Checks a page's folder: it exists and has an `index.html`. The error is reported at the
/// page's `path`.
pub(crate) fn check_page(root: &Path, path: &LitStr) -> syn::Result<()> {
    let folder = path.value();
    let problem = if folder.is_empty() || Path::new(&folder).is_absolute() || folder.contains('\\')
    {
        Some(format!(
            "a UI page's `path` is a folder relative to the plugin crate, written with `/`, e.g. `ui/dashboard`; `{folder}` is not"
        ))
    } else {
        let dir = root.join(&folder);
        if !dir.is_dir() {
            Some(format!(
                "the UI page folder `{folder}` does not exist in this crate ({}); create it with an `index.html`, or fix the path",
                dir.display()
            ))
        } else if !dir.join("index.html").is_file() {
            Some(format!(
                "the UI page folder `{folder}` has no `index.html`; a page is served from its `index.html` ({})",
                dir.join("index.html").display()
            ))
        } else {
            None
        }
    };
    match problem {
        Some(problem) => Err(syn::Error::new(path.span(), problem)),
        None => Ok(()),
    }
}

/// Every file of the pages' folders and of `ui/static/` when it exists (a plugin without
/// pages may still serve assets there), keyed by their path
/// relative to the crate, sorted, each once.
pub(crate) fn ui_files(root: &Path, pages: &[&LitStr]) -> syn::Result<Vec<File>> {
    let mut files = Vec::new();
    for page in pages {
        let folder = page.value();
        let folder = folder.trim_end_matches('/');
        walk(&root.join(folder), folder, &mut files)
            .map_err(|problem| syn::Error::new(page.span(), problem))?;
    }
    if root.join(STATIC_FOLDER).is_dir() {
        let span = pages
            .first()
            .map_or_else(proc_macro2::Span::call_site, |page| page.span());
        walk(&root.join(STATIC_FOLDER), STATIC_FOLDER, &mut files)
            .map_err(|problem| syn::Error::new(span, problem))?;
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    files.dedup_by(|a, b| a.key == b.key);
    Ok(files)
}

/// The docs folder's files keyed by their path inside it; `folder` is the `docs` key when
/// written (then it must exist), else the default folder if it exists.
pub(crate) fn docs(root: &Path, folder: Option<&LitStr>) -> syn::Result<Vec<File>> {
    let mut files = Vec::new();
    match folder {
        Some(lit) => {
            let dir = root.join(lit.value());
            if !dir.is_dir() {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "the docs folder `{}` does not exist in this crate ({}); create it with a `README.md`, or remove the key to use `docs/` when it exists",
                        lit.value(),
                        dir.display()
                    ),
                ));
            }
            walk(&dir, "", &mut files).map_err(|problem| syn::Error::new(lit.span(), problem))?;
        }
        None => {
            let dir = root.join(DEFAULT_DOCS);
            if dir.is_dir() {
                walk(&dir, "", &mut files)
                    .map_err(|problem| syn::Error::new(proc_macro2::Span::call_site(), problem))?;
            }
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(files)
}

/// Adds every regular file below `dir` (recursively, skipping hidden names such as
/// `.DS_Store`) under `prefix/…`.
fn walk(dir: &Path, prefix: &str, files: &mut Vec<File>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot read `{}`: {error}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|error| format!("cannot read `{}`: {error}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(format!(
                "`{}` has a file name that is not UTF-8; rename it",
                entry.path().display()
            ));
        };
        if name.starts_with('.') {
            continue;
        }
        let key = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            walk(&path, &key, files)?;
        } else if path.is_file() {
            files.push(File {
                key,
                absolute: path,
            });
        }
    }
    Ok(())
}

/// `&[EmbeddedFile { path, bytes: include_bytes!(…) }, …]`.
pub(crate) fn expand(files: &[File]) -> TokenStream {
    let entries = files.iter().map(|file| {
        let key = &file.key;
        let absolute = file.absolute.to_string_lossy();
        quote! {
            ::plexichat::__private::EmbeddedFile {
                path: #key,
                bytes: ::core::include_bytes!(#absolute),
            }
        }
    });
    quote!(&[#(#entries),*])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "plexichat-macros-assets-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for file in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, file.as_bytes()).unwrap();
        }
        dir
    }

    fn lit(value: &str) -> LitStr {
        LitStr::new(value, proc_macro2::Span::call_site())
    }

    fn keys(files: &[File]) -> Vec<&str> {
        files.iter().map(|file| file.key.as_str()).collect()
    }

    #[test]
    fn pages_and_the_static_folder_are_embedded_once_each_in_order() {
        let root = tree(&[
            "ui/dashboard/index.html",
            "ui/dashboard/app.js",
            "ui/dashboard/img/logo.svg",
            "ui/dashboard/.DS_Store",
            "ui/static/shared.css",
            "ui/other/index.html",
        ]);
        let (dashboard, again) = (lit("ui/dashboard"), lit("ui/dashboard/"));
        let files = ui_files(&root, &[&dashboard, &again]).unwrap();
        assert_eq!(
            keys(&files),
            [
                "ui/dashboard/app.js",
                "ui/dashboard/img/logo.svg",
                "ui/dashboard/index.html",
                "ui/static/shared.css"
            ]
        );
        assert!(files[0].absolute.ends_with("ui/dashboard/app.js"));
    }

    #[test]
    fn a_page_folder_must_exist_and_hold_an_index() {
        let root = tree(&["ui/empty/readme.txt", "ui/good/index.html"]);
        assert!(check_page(&root, &lit("ui/good")).is_ok());
        let missing = check_page(&root, &lit("ui/nowhere"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("`ui/nowhere` does not exist"), "{missing}");
        let no_index = check_page(&root, &lit("ui/empty")).unwrap_err().to_string();
        assert!(no_index.contains("has no `index.html`"), "{no_index}");
        for bad in ["", "/etc", "ui\\good"] {
            let error = check_page(&root, &lit(bad)).unwrap_err().to_string();
            assert!(
                error.contains("relative to the plugin crate"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn docs_come_from_the_default_folder_when_it_exists_or_the_named_one() {
        let root = tree(&["docs/README.md", "docs/guides/setup.md", "manual/index.md"]);
        assert_eq!(
            keys(&docs(&root, None).unwrap()),
            ["README.md", "guides/setup.md"]
        );
        assert_eq!(
            keys(&docs(&root, Some(&lit("manual"))).unwrap()),
            ["index.md"]
        );
        let error = docs(&root, Some(&lit("nowhere"))).unwrap_err().to_string();
        assert!(
            error.contains("the docs folder `nowhere` does not exist"),
            "{error}"
        );
        let empty = tree(&["src/lib.rs"]);
        assert!(docs(&empty, None).unwrap().is_empty());
    }
}
