//! House rules checked as tests: every Rust file says what it is for, nothing is left
//! half-done, core's crates depend only downwards and plugins on the facade alone, and git ignores what running the server
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

/// The `[dependencies]` section of a manifest: the names of the crates it lists, in order.
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_section = false;
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[dependencies]";
        } else if in_section && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap().trim();
            names.push(name.to_string());
        }
    }
    names
}

/// Core's crates, lowest first. Cargo refuses a cycle between them; this holds the order
/// `ARCHITECTURE.md` describes, so that, say, backups never come to need the server.
const CORE_CRATES: [(&str, &str); 6] = [
    ("plexichat-rules", "core/rules"),
    ("plexichat-kernel", "core/kernel"),
    ("plexichat-backup", "core/backup"),
    ("plexichat-web", "core/web"),
    ("plexichat-testing", "core/testing"),
    ("plexichat", "core"),
];

#[test]
fn core_crates_depend_only_on_lower_ones() {
    let root = workspace_root();
    let mut violations = Vec::new();
    for (rank, (name, folder)) in CORE_CRATES.iter().enumerate() {
        for dependency in dependencies(&root.join(folder).join("Cargo.toml")) {
            let higher = CORE_CRATES[rank..]
                .iter()
                .any(|(other, _)| *other == dependency);
            if higher {
                violations.push(format!(
                    "{name} depends on {dependency}, which is not below it"
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// A plugin builds on the facade alone: the runtime's constructors, storage, the data folder,
/// the server and backups are the host's, in crates a plugin does not depend on (its tests,
/// examples and benchmarks, which start a host, may).
#[test]
fn plugins_depend_on_the_facade_only() {
    let root = workspace_root();
    let mut violations = Vec::new();
    for entry in std::fs::read_dir(root.join("plugins")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        for dependency in dependencies(&manifest) {
            if dependency.starts_with("plexichat-") && dependency != "plexichat-macros" {
                violations.push(format!("{}: {dependency}", manifest.display()));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Every plugin has the one build script that makes cargo rebuild it when a file is added to
/// a folder its manifest embeds (a migration added with a bad name must fail the build at
/// once, not at some later change).
#[test]
fn every_plugin_has_the_build_script_that_watches_its_folders() {
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("plugins")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("Cargo.toml").exists() {
            continue;
        }
        let script = std::fs::read_to_string(dir.join("build.rs")).unwrap_or_default();
        if script != plexichat_rules::PLUGIN_BUILD_SCRIPT {
            wrong.push(dir.display().to_string());
        }
    }
    assert!(
        wrong.is_empty(),
        "these plugins lack plexichat_rules::PLUGIN_BUILD_SCRIPT as build.rs: {wrong:#?}"
    );
}

/// The facade re-exports and defines nothing: every item of `core/src/lib.rs` is a `use`, a
/// module of `use`s, or the documentation around them.
#[test]
fn the_facade_only_re_exports() {
    let text = std::fs::read_to_string(workspace_root().join("core/src/lib.rs")).unwrap();
    let defined: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| {
            [
                "fn ",
                "pub fn ",
                "struct ",
                "pub struct ",
                "enum ",
                "pub enum ",
                "impl",
                "trait ",
                "pub trait ",
                "static ",
                "const ",
                "pub const ",
                "macro_rules!",
            ]
            .iter()
            .any(|start| line.starts_with(start))
        })
        .collect();
    assert!(defined.is_empty(), "the facade defines {defined:#?}");
}

#[test]
fn the_manifest_reader_sees_each_dependency_form() {
    let manifest = plexichat_tests::scratch("manifest").join("Cargo.toml");
    std::fs::write(
        &manifest,
        "[package]\nname = \"x\"\n[dependencies]\n# a comment\nplexichat.workspace = true\nserde = { version = \"1\" }\ntokio = \"1\"\n[dev-dependencies]\nplexichat-web.workspace = true\n",
    )
    .unwrap();
    assert_eq!(dependencies(&manifest), ["plexichat", "serde", "tokio"]);
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
        "core/kernel/src/storage/data_dir.rs",
        "docs/operator-guide.md",
        "docs/examples/plexichat.toml",
        "plugins/hello_world/data/fixture.json",
    ] {
        assert!(!ignored(path), "{path} is ignored");
    }
}
