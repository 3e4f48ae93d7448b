//! `#[plugin(migrations = "migrations")]`: reads the plugin crate's migrations folder while
//! expanding, checks every file name, and embeds each file with `include_str!` (which also
//! makes cargo rebuild the plugin when a migration's text changes).

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::quote;
use syn::LitStr;

/// One migration: its version and name, and the file each engine runs.
#[derive(Debug, PartialEq)]
pub(crate) struct MigrationFile {
    pub(crate) version: u32,
    pub(crate) name: String,
    /// Relative to the crate, e.g. `migrations/sqlite/0001_init.sql`.
    pub(crate) sqlite: String,
    pub(crate) postgres: String,
}

/// The dialect folders; a file in one replaces the shared file of the same name for that
/// engine.
const DIALECTS: [&str; 2] = ["sqlite", "postgres"];

/// Reads `folder` (relative to the crate being compiled) or reports, at the key's string,
/// what is wrong with it.
pub(crate) fn read(folder: &LitStr) -> syn::Result<Vec<MigrationFile>> {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    scan(&root, &folder.value()).map_err(|problem| syn::Error::new(folder.span(), problem))
}

/// The migrations under `root/folder`, sorted by version, or what is wrong.
fn scan(root: &Path, folder: &str) -> Result<Vec<MigrationFile>, String> {
    let base = root.join(folder);
    if !base.is_dir() {
        return Err(format!(
            "the migrations folder `{folder}` does not exist in this crate ({}); create it with files named like `0001_create_items.sql`, or remove the key",
            base.display()
        ));
    }
    let shared = files(&base, folder)?;
    let mut per_dialect = Vec::new();
    for dialect in DIALECTS {
        let dir = base.join(dialect);
        per_dialect.push(if dir.is_dir() {
            files(&dir, &format!("{folder}/{dialect}"))?
        } else {
            Vec::new()
        });
    }
    let mut names: Vec<&(u32, String)> =
        shared.iter().chain(per_dialect.iter().flatten()).collect();
    names.sort();
    names.dedup();
    let mut migrations: Vec<MigrationFile> = Vec::new();
    for (version, name) in names {
        if let Some(previous) = migrations
            .iter()
            .find(|m| m.version == *version && m.name != *name)
        {
            return Err(format!(
                "two migrations have version {version:04}: `{}.sql` and `{name}.sql`; each number is used once",
                previous.name
            ));
        }
        if migrations.iter().any(|m| m.name == *name) {
            continue;
        }
        let in_shared = shared.iter().any(|(_, n)| n == name);
        let mut paths = Vec::new();
        for (dialect, files) in DIALECTS.iter().zip(&per_dialect) {
            if files.iter().any(|(_, n)| n == name) {
                paths.push(format!("{folder}/{dialect}/{name}.sql"));
            } else if in_shared {
                paths.push(format!("{folder}/{name}.sql"));
            } else {
                let (has, lacks) = if *dialect == "sqlite" {
                    ("postgres", "sqlite")
                } else {
                    ("sqlite", "postgres")
                };
                return Err(format!(
                    "`{folder}/{has}/{name}.sql` has no counterpart for {lacks}: add `{folder}/{lacks}/{name}.sql`, or a shared `{folder}/{name}.sql`"
                ));
            }
        }
        let postgres = paths.pop().unwrap_or_default();
        let sqlite = paths.pop().unwrap_or_default();
        migrations.push(MigrationFile {
            version: *version,
            name: name.clone(),
            sqlite,
            postgres,
        });
    }
    Ok(migrations)
}

/// The `NNNN_name.sql` files directly in `dir` as `(version, name)`; any other file is an
/// error naming it.
fn files(dir: &Path, shown: &str) -> Result<Vec<(u32, String)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|error| format!("cannot read `{shown}`: {error}"))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| format!("cannot read `{shown}`: {error}"))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if DIALECTS.contains(&file_name.as_str()) && !shown.contains('/') {
                continue;
            }
            return Err(format!(
                "unexpected folder `{shown}/{file_name}`: a migrations folder holds `NNNN_name.sql` files and optional `sqlite/` and `postgres/` folders"
            ));
        }
        match parse_name(&file_name) {
            Some(parsed) => found.push(parsed),
            None => {
                return Err(format!(
                    "`{shown}/{file_name}` is not named like a migration: expected four digits, an underscore, a lowercase name and `.sql`, e.g. `0001_create_items.sql`"
                ));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `0001_create_items.sql` → `(1, "0001_create_items")`.
fn parse_name(file: &str) -> Option<(u32, String)> {
    let stem = file.strip_suffix(".sql")?;
    let (digits, rest) = stem.split_at_checked(4)?;
    let name = rest.strip_prefix('_')?;
    let valid = digits.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    valid.then(|| (digits.parse().unwrap_or(0), stem.to_string()))
}

/// The descriptor list for the expansion: each file embedded by its absolute path.
pub(crate) fn expand(migrations: &[MigrationFile]) -> TokenStream {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let entries = migrations.iter().map(|m| {
        let (version, name, sqlite, postgres) = (m.version, &m.name, &m.sqlite, &m.postgres);
        let sqlite_abs = format!("{root}/{sqlite}");
        let postgres_abs = format!("{root}/{postgres}");
        quote! {
            ::plexichat::__private::Migration {
                version: #version,
                name: #name,
                sqlite: ::core::include_str!(#sqlite_abs),
                sqlite_file: #sqlite,
                postgres: ::core::include_str!(#postgres_abs),
                postgres_file: #postgres,
            }
        }
    });
    quote!(&[#(#entries),*])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[&str]) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "plexichat-macros-migrations-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for file in files {
            let path = dir.join("migrations").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "SELECT 1;").unwrap();
        }
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        dir
    }

    #[test]
    fn names_are_four_digits_an_underscore_and_a_lowercase_name() {
        assert_eq!(parse_name("0001_init.sql"), Some((1, "0001_init".into())));
        assert_eq!(
            parse_name("0042_add_index_2.sql"),
            Some((42, "0042_add_index_2".into()))
        );
        for bad in [
            "1_init.sql",
            "0001-init.sql",
            "0001_.sql",
            "0001_Init.sql",
            "0001_init.txt",
            "init.sql",
            "00001_x.sql",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn dialect_files_replace_the_shared_one_for_their_engine() {
        let dir = folder(&[
            "0001_init.sql",
            "0002_index.sql",
            "sqlite/0002_index.sql",
            "sqlite/0003_x.sql",
            "postgres/0003_x.sql",
        ]);
        let found = scan(&dir, "migrations").unwrap();
        let shown: Vec<(u32, &str, &str)> = found
            .iter()
            .map(|m| (m.version, m.sqlite.as_str(), m.postgres.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (1, "migrations/0001_init.sql", "migrations/0001_init.sql"),
                (
                    2,
                    "migrations/sqlite/0002_index.sql",
                    "migrations/0002_index.sql"
                ),
                (
                    3,
                    "migrations/sqlite/0003_x.sql",
                    "migrations/postgres/0003_x.sql"
                ),
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let missing = scan(Path::new("/nonexistent"), "migrations").unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        let bad = scan(&folder(&["0001_init.sql", "notes.md"]), "migrations").unwrap_err();
        assert!(
            bad.contains("`migrations/notes.md` is not named like a migration"),
            "{bad}"
        );
        let twice = scan(&folder(&["0001_a.sql", "0001_b.sql"]), "migrations").unwrap_err();
        assert!(
            twice.contains("two migrations have version 0001"),
            "{twice}"
        );
        let lonely = scan(&folder(&["sqlite/0001_only.sql"]), "migrations").unwrap_err();
        assert!(
            lonely.contains("has no counterpart for postgres"),
            "{lonely}"
        );
    }
}
