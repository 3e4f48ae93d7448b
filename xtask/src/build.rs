//! `cargo xtask build-app`: one statically linked `plexichat` with the chosen plugins.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};

use crate::codegen;
use crate::elf;
use crate::workspace;

/// Which plugins to compile in.
#[derive(Debug, Clone)]
pub enum Selection {
    /// The app's `default` feature.
    Default,
    /// Every workspace plugin (`all`).
    All,
    /// Exactly these (and what they depend on).
    Only(Vec<String>),
}

/// What `build-app` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Plugins to compile in.
    pub selection: Selection,
    /// Optimised build.
    pub release: bool,
    /// Skip static linking (the host's default, dynamic glibc).
    pub dynamic: bool,
    /// Where to put the binary.
    pub out: PathBuf,
    /// Plugins from outside the repository (`--with`), compiled in as well.
    pub with: Vec<crate::with::External>,
}

/// How the binary was linked, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// The musl target: static by default.
    Musl(String),
    /// The host glibc target with `crt-static`.
    GlibcStatic(String),
    /// The host target, linked dynamically as rustc does by default (`--dynamic`).
    Dynamic(String),
}

impl Flavor {
    fn target(&self) -> &str {
        match self {
            Flavor::Musl(target) | Flavor::GlibcStatic(target) | Flavor::Dynamic(target) => target,
        }
    }
}

/// Picks musl when its standard library is installed, else static glibc; or the dynamic
/// host target when asked.
pub fn flavor(dynamic: bool) -> anyhow::Result<Flavor> {
    let host = rustc_output(&["-vV"])?
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .context("rustc -vV printed no host")?
        .to_string();
    if dynamic {
        return Ok(Flavor::Dynamic(host));
    }
    let sysroot = rustc_output(&["--print", "sysroot"])?;
    let musl = host.replace("-gnu", "-musl");
    if musl != host
        && Path::new(sysroot.trim())
            .join("lib/rustlib")
            .join(&musl)
            .join("lib")
            .is_dir()
    {
        Ok(Flavor::Musl(musl))
    } else {
        Ok(Flavor::GlibcStatic(host))
    }
}

fn rustc_output(args: &[&str]) -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = std::process::Command::new(rustc)
        .args(args)
        .output()
        .context("cannot run rustc")?;
    anyhow::ensure!(output.status.success(), "rustc {} failed", args.join(" "));
    Ok(String::from_utf8(output.stdout)?)
}

/// The cargo feature arguments for a selection, after checking plugin names.
pub fn feature_args(root: &Path, selection: &Selection) -> anyhow::Result<Vec<String>> {
    Ok(match selection {
        Selection::Default => vec![],
        Selection::All => vec!["--features".into(), "all".into()],
        Selection::Only(names) => {
            let known: Vec<String> = workspace::plugins(root)?
                .into_iter()
                .map(|plugin| plugin.name)
                .collect();
            for name in names {
                if !known.contains(name) {
                    bail!(
                        "unknown plugin `{name}` in --plugins; workspace plugins: {}",
                        known.join(", ")
                    );
                }
            }
            vec![
                "--no-default-features".into(),
                "--features".into(),
                names.join(","),
            ]
        }
    })
}

/// Brings the app's plugin wiring up to date, then builds the binary, copies it to
/// `options.out`, and checks that it is static.
///
/// Stale wiring is the one mistake a build cannot report well: after a plugin gains a
/// dependency, its feature does not enable the dependency's, so the binary links a plugin it
/// was not built to contain and refuses to start. Regenerating first is cheap and leaves
/// nothing to remember.
pub fn build_app(options: &Options) -> anyhow::Result<PathBuf> {
    let root = workspace::root();
    let updated = codegen::write(&root)?;
    if !updated.is_empty() {
        eprintln!(
            "updated {} to match plugins/ (what `cargo xtask codegen` does)",
            updated.join(" and ")
        );
    }
    let mut features = feature_args(&root, &options.selection)?;
    let flavor = flavor(options.dynamic)?;
    let mut described = describe_selection(&options.selection);
    // Plugins from elsewhere are built in a generated copy of the app, never by editing this
    // repository's manifests.
    let app_dir = if options.with.is_empty() {
        root.clone()
    } else {
        let names: Vec<&str> = options.with.iter().map(|e| e.name.as_str()).collect();
        described.push_str(&format!(
            ", and from outside the repository: {}",
            names.join(", ")
        ));
        match features.iter().position(|arg| arg == "--features") {
            Some(at) => features[at + 1] = format!("{},{}", features[at + 1], names.join(",")),
            None => features.extend(["--features".to_string(), names.join(",")]),
        }
        crate::with::generate(&root, &options.with)?
    };
    eprintln!("building plexichat for {} ({described})", flavor.target(),);
    let target_dir = root.join("target");
    let executable = build_binary_in(
        &app_dir,
        (!options.with.is_empty()).then_some(target_dir.as_path()),
        &flavor,
        "plexichat-app",
        "plexichat",
        &features,
        options.release,
    )?;

    let out = if options.out.is_absolute() {
        options.out.clone()
    } else {
        root.join(&options.out)
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // Copy to a temporary name and rename, so a running `dist/plexichat` is never half-written
    // and two builds writing the same path at once each rename a complete file.
    let partial = out.with_extension(format!("partial-{}", std::process::id()));
    std::fs::copy(&executable, &partial).with_context(|| {
        format!(
            "cannot copy {} to {}",
            executable.display(),
            partial.display()
        )
    })?;
    std::fs::rename(&partial, &out)?;

    let linkage = elf::linkage(&out)?;
    let size = std::fs::metadata(&out)?.len();
    let how = match &flavor {
        Flavor::Musl(target) => format!("musl ({target})"),
        Flavor::GlibcStatic(target) => format!(
            "glibc with crt-static ({target}; the musl target is not installed: \
             `rustup target add {}` gives a musl build)",
            target.replace("-gnu", "-musl")
        ),
        Flavor::Dynamic(target) => {
            eprintln!(
                "wrote {} ({:.1} MiB), dynamically linked ({target}), needs {}",
                out.display(),
                size as f64 / (1024.0 * 1024.0),
                linkage.needed.join(", ")
            );
            return Ok(out);
        }
    };
    if !linkage.is_static() {
        bail!(
            "{} is not static: interpreter {:?}, needs {:?}",
            out.display(),
            linkage.interpreter,
            linkage.needed
        );
    }
    eprintln!(
        "wrote {} ({:.1} MiB), statically linked against {how}",
        out.display(),
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(out)
}

/// Builds `bin` of `package` for `flavor` (static unless `Flavor::Dynamic`) and returns the
/// executable cargo reports.
pub fn build_binary(
    flavor: &Flavor,
    package: &str,
    bin: &str,
    extra_args: &[String],
    release: bool,
) -> anyhow::Result<PathBuf> {
    build_binary_in(
        &workspace::root(),
        None,
        flavor,
        package,
        bin,
        extra_args,
        release,
    )
}

/// [`build_binary`] in the workspace at `dir`, optionally with its own target directory.
pub fn build_binary_in(
    dir: &Path,
    target_dir: Option<&Path>,
    flavor: &Flavor,
    package: &str,
    bin: &str,
    extra_args: &[String],
    release: bool,
) -> anyhow::Result<PathBuf> {
    let mut cargo = workspace::cargo();
    if let Some(target_dir) = target_dir {
        cargo.env("CARGO_TARGET_DIR", target_dir);
    }
    cargo
        .current_dir(dir)
        .args(["build", "--package", package, "--bin", bin])
        .args(["--target", flavor.target()])
        .args(extra_args)
        .args(["--message-format", "json-render-diagnostics"])
        .stdout(Stdio::piped());
    if release {
        cargo.arg("--release");
    }
    if let Flavor::GlibcStatic(_) = flavor {
        // `--target` keeps these flags off build scripts and proc macros, which must stay
        // dynamic to be loaded by the compiler.
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C target-feature=+crt-static");
        cargo.env("RUSTFLAGS", flags.trim());
    }
    let output = cargo
        .spawn()
        .context("cannot run cargo")?
        .wait_with_output()?;
    anyhow::ensure!(output.status.success(), "cargo build failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == bin)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo reported no {bin} executable"))
}

fn describe_selection(selection: &Selection) -> String {
    match selection {
        Selection::Default => "default plugins".to_string(),
        Selection::All => "all plugins".to_string(),
        Selection::Only(names) if names.is_empty() => "no plugins".to_string(),
        Selection::Only(names) => format!("plugins: {}", names.join(", ")),
    }
}
