//! House rules checked as tests: every Rust file says what it is for, nothing is left
//! half-done, core's layers import only downwards, and git ignores what running the server
//! leaves behind.

use std::path::{Path, PathBuf};

use plexichat_tests::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !["target", "dist", "ui", ".git", "data"].contains(&name.as_str()) {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn workspace_sources() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["core", "macros", "plugins", "app", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {files:?}");
    files
}

#[test]
fn every_file_starts_with_a_module_doc_comment() {
    let missing: Vec<String> = workspace_sources()
        .into_iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading `//!` comment: {missing:#?}"
    );
}

#[test]
fn no_debugging_leftovers_or_stubs() {
    let forbidden = [
        concat!("dbg", "!("),
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
    ];
    let mut found = Vec::new();
    for path in workspace_sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            if forbidden.iter().any(|needle| line.contains(needle)) {
                found.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// Core's layers, lowest first, with their rank; `runtime` and `storage` sit side by side.
/// `selftest` (the plugin test runner) sits above `web`: a test's client is the whole
/// application, served in-process.
const LAYERS: [(&str, u8); 7] = [
    ("abi", 0),
    ("registry", 1),
    ("config", 2),
    ("runtime", 3),
    ("storage", 3),
    ("web", 4),
    ("selftest", 5),
];
/// The facade (`lib.rs`, `testing.rs`) sits on top.
const FACADE: u8 = 6;
/// What a lower layer may name from a higher one: the handles that generated shims receive,
/// and `abi`'s own registration macro, which `#[macro_export]` places at the crate root.
const ALLOWED_UPWARD: [(&str, &str); 8] = [
    // A plugin test's client is the one plugin authors' own tests use.
    ("selftest", "crate::testing::TestClient"),
    ("abi", "crate::runtime::Runtime"),
    // The router state every route is built on.
    ("abi", "crate::runtime::Host"),
    // What a plugin test's shim receives, as a health check's receives the runtime.
    ("abi", "crate::selftest::TestEnv"),
    ("abi", "crate::runtime::PluginContext"),
    // A command function's handle and what it is built from, as PluginContext is for `init`.
    ("abi", "crate::runtime::CommandContext"),
    ("abi", "crate::runtime::Invocation"),
    ("abi", "crate::__plexichat_register"),
];

fn rank_of(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map_or(FACADE, |(_, rank)| *rank)
}

/// The first segment after every `crate::` in `line`, with the full path as written;
/// `crate::{a::b, c}` yields `a` and `c`.
fn crate_paths(line: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(index) = rest.find("crate::") {
        let after = &rest[index + "crate::".len()..];
        let word = |text: &str| -> String {
            text.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect()
        };
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(item.trim().to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(item.trim().to_string());
        } else {
            found.push(word(after));
        }
        rest = after;
    }
    found
        .into_iter()
        .filter(|path| !path.is_empty())
        .map(|path| {
            let first = path.split("::").next().unwrap_or_default().to_string();
            (first, format!("crate::{path}"))
        })
        .collect()
}

/// Lower layers of core never import higher ones (`ARCHITECTURE.md`, "Layers"), except for
/// the two handle types `abi`'s function pointers receive.
#[test]
fn core_layers_import_only_downwards() {
    let source = workspace_root().join("core/src");
    let mut files = Vec::new();
    rust_files(&source, &mut files);
    let mut violations = Vec::new();
    for path in files {
        let relative = path.strip_prefix(&source).unwrap();
        let layer = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let rank = rank_of(&layer);
        if rank == FACADE {
            assert!(
                ["lib", "testing"].contains(&layer.as_str()),
                "{}: a module outside every layer; add it to one (ARCHITECTURE.md, \"Layers\")",
                relative.display()
            );
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (module, written) in crate_paths(line) {
                let allowed = ALLOWED_UPWARD.iter().any(|(from, item)| {
                    *from == layer
                        && written.starts_with(item)
                        && !written[item.len()..].starts_with(|c: char| c.is_alphanumeric())
                });
                if rank_of(&module) > rank && !allowed {
                    violations.push(format!(
                        "{}:{}: layer `{layer}` imports `{written}` from a higher layer",
                        relative.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_layer_check_sees_grouped_and_nested_paths() {
    assert_eq!(
        crate_paths("use crate::{http::error::ApiError, runtime::{Runtime, state}};"),
        [
            (
                "http".to_string(),
                "crate::http::error::ApiError".to_string()
            ),
            (
                "runtime".to_string(),
                "crate::runtime::{Runtime, state}".to_string()
            ),
        ]
    );
    assert_eq!(
        crate_paths("let x = crate::config::Config::defaults(r);"),
        [(
            "config".to_string(),
            "crate::config::Config::defaults".to_string()
        )]
    );
    assert_eq!(rank_of("web"), 4);
    assert_eq!(rank_of("lib"), FACADE);
}

/// What README has a newcomer create at the root (`plexichat.toml`) and what the first
/// `plexichat serve` writes there (`data/admin_token`) never shows up in `git status`, while
/// the repository's own files, and a `plexichat.toml` below the root, stay committable. Asks
/// git itself, in a scratch repository holding only this `.gitignore` and no user or global
/// ignore file, so the answer does not depend on the machine or on `.git` being present.
#[test]
fn git_ignores_what_a_first_run_creates_and_nothing_committed() {
    let root = workspace_root();
    let repository = plexichat_tests::scratch("gitignore");
    std::fs::copy(root.join(".gitignore"), repository.join(".gitignore")).unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(&repository)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["-c", "core.excludesFile="])
            .args(args)
            .output()
            .expect("git runs")
    };
    assert!(git(&["init", "--quiet"]).status.success());
    let ignored = |path: &str| {
        let output = git(&["check-ignore", "--no-index", "--quiet", path]);
        match output.status.code() {
            Some(0) => true,
            Some(1) => false,
            _ => panic!(
                "git check-ignore {path}: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    };
    for path in [
        "plexichat.toml",
        "data/admin_token",
        "dist/plexichat",
        "target/debug",
    ] {
        assert!(ignored(path), "{path} is not ignored");
    }
    for path in [
        "Cargo.toml",
        "app/Cargo.toml",
        "core/src/storage/data_dir.rs",
        "docs/operator-guide.md",
        "docs/examples/plexichat.toml",
        "plugins/hello_world/data/fixture.json",
    ] {
        assert!(!ignored(path), "{path} is ignored");
    }
}
