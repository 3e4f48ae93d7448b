//! `cargo xtask test`: every cargo test run the project needs, streamed as it goes, and one
//! closing line that sums the `test result:` lines of all of them.
//!
//! Each run's output would otherwise end with the last test binary's own line (often a
//! doc-test run's `0 passed`), which says nothing about the hundreds of tests above it.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

use anyhow::Context;

use crate::workspace;

/// Counts summed over libtest's `test result:` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests marked `#[ignore]`.
    pub ignored: u64,
}

impl Counts {
    /// Adds the counts of one libtest summary line
    /// (`test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; …`);
    /// any other line adds nothing.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        let Some((_, counts)) = rest.split_once(". ") else {
            return;
        };
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(number), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }

    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

/// What one `cargo test` run reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Its arguments after `cargo test`.
    pub args: Vec<String>,
    /// Summed over its test binaries.
    pub counts: Counts,
    /// Whether cargo exited successfully (a build error fails a run with no failed test).
    pub succeeded: bool,
}

/// The closing line over every run: `N passed, N failed, N ignored in R cargo test runs`,
/// then which runs failed.
pub fn summary(runs: &[RunResult]) -> String {
    let mut total = Counts::default();
    for run in runs {
        total.add(run.counts);
    }
    let mut line = format!(
        "{} passed, {} failed, {} ignored in {} cargo test runs",
        total.passed,
        total.failed,
        total.ignored,
        runs.len()
    );
    let failed: Vec<String> = runs
        .iter()
        .filter(|run| !run.succeeded)
        .map(|run| {
            let why = if run.counts.failed > 0 {
                format!("{} failed", run.counts.failed)
            } else {
                "no test failed: see its build or crash output above".to_string()
            };
            format!("`cargo test {}` ({why})", run.args.join(" "))
        })
        .collect();
    if !failed.is_empty() {
        line.push_str("; failed: ");
        line.push_str(&failed.join(", "));
    }
    line
}

/// One planned `cargo test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The arguments after `cargo test`.
    pub args: Vec<String>,
    /// Whether `TestApp`s in it serve from PostgreSQL (`PLEXICHAT_TEST_ENGINE=postgres`)
    /// instead of in-memory SQLite.
    pub on_postgres: bool,
}

/// The variable that makes every `TestApp` of a run use a fresh PostgreSQL database.
pub const ENGINE_VAR: &str = "PLEXICHAT_TEST_ENGINE";

/// The runs `cargo xtask test` makes.
pub fn plan(root: &Path) -> anyhow::Result<Vec<Planned>> {
    // Every plugin of the workspace, not a fixed list, so that an author's plugin is tested
    // the way the examples are.
    let plugin_packages: Vec<String> = workspace::plugins(root)?
        .into_iter()
        .flat_map(|plugin| ["--package".to_string(), plugin.name])
        .collect();
    let args = |list: &[&str], plugins: bool| {
        let mut args: Vec<String> = list.iter().map(|arg| arg.to_string()).collect();
        if plugins {
            args.extend(plugin_packages.iter().cloned());
        }
        // Every test binary of a run runs even when one fails, so the sum covers them all.
        args.push("--no-fail-fast".to_string());
        args
    };
    let sqlite = |args| Planned {
        args,
        on_postgres: false,
    };
    Ok(vec![
        sqlite(args(&["--workspace"], false)),
        // The facade and the plugins alone, as a plugin author builds them: without the
        // configuration validator that the app and the test suite turn on.
        sqlite(args(&["--package", "plexichat"], true)),
        sqlite(args(
            &[
                "--package",
                "plexichat-tests",
                "--features",
                "plexichat-tests/inventory",
            ],
            true,
        )),
        // The plugins' own tests again, on PostgreSQL: the same plugin code on both engines.
        Planned {
            args: args(&[], true),
            on_postgres: true,
        },
    ])
}

/// Runs every planned `cargo test`, even after one fails, and returns the closing line; an
/// error (whose text is that line) if anything failed.
pub fn run(root: &Path) -> anyhow::Result<()> {
    browser_prerequisites()?;
    // One throwaway PostgreSQL for every run; the storage tests read its URL and fail
    // loudly without it. An operator's own server can stand in for it.
    let (cluster, url) = crate::postgres::Cluster::from_env_or_start()?;
    if cluster.is_some() {
        eprintln!("PostgreSQL for the tests: {url}");
    }
    let mut results = Vec::new();
    for planned in plan(root)? {
        let engine = if planned.on_postgres {
            "postgres"
        } else {
            "sqlite"
        };
        eprintln!(
            "cargo test {} ({ENGINE_VAR}={engine})",
            planned.args.join(" ")
        );
        let env = [
            (crate::postgres::URL_VAR, url.as_str()),
            (ENGINE_VAR, engine),
        ];
        results.push(run_one(root, planned.args, &env)?);
    }
    drop(cluster);
    let line = summary(&results);
    anyhow::ensure!(results.iter().all(|run| run.succeeded), "{line}");
    eprintln!("{line}");
    Ok(())
}

/// The Chromium the browser tests drive: `$CHROMIUM`, else Debian's; an error saying how to
/// get it when it is not there.
pub fn chromium() -> anyhow::Result<std::path::PathBuf> {
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| "/usr/bin/chromium".into(), std::path::PathBuf::from);
    anyhow::ensure!(
        chromium.is_file(),
        "Chromium is not installed at {}; the browser tests need it: run `apt-get install chromium` (or set CHROMIUM to its executable)",
        chromium.display()
    );
    Ok(chromium)
}

/// The browser tests (`tests/browser`, run by the integration suite) need Chromium, Node
/// and npm, the OpenAPI test Python with `venv`; say in one line how to get them rather than
/// fail deep inside a test run.
fn browser_prerequisites() -> anyhow::Result<()> {
    chromium()?;
    let venv = std::process::Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output()
        .is_ok_and(|output| output.status.success());
    anyhow::ensure!(
        venv,
        "Python 3 with its venv module is missing; the OpenAPI test needs it to install schemathesis: run `apt-get install python3-venv`"
    );
    let webkit = std::process::Command::new("pkg-config")
        .args(["--exists", "webkit2gtk-4.1"])
        .status()
        .is_ok_and(|status| status.success());
    anyhow::ensure!(
        webkit,
        "WebKitGTK's development files are missing; the desktop window's test builds against them: run `apt-get install libwebkit2gtk-4.1-dev pkg-config`"
    );
    for (tool, package, why) in [
        (
            "Xvfb",
            "xvfb",
            "the desktop window is tested on a virtual screen",
        ),
        (
            "xwd",
            "x11-apps",
            "the desktop window is tested on a virtual screen",
        ),
        ("oathtool", "oathtool", "TOTP codes are checked against it"),
        (
            "zbarimg",
            "zbar-tools",
            "the chat client's QR code is read back with it",
        ),
        ("jq", "jq", "the chat API guide runs as a script"),
        ("curl", "curl", "the chat API guide runs as a script"),
    ] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|output| output.status.success());
        anyhow::ensure!(
            found,
            "`{tool}` is missing; {why}: run `apt-get install {package}`"
        );
    }
    for tool in ["node", "npm"] {
        let found = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        anyhow::ensure!(
            found,
            "`{tool}` is not on PATH; the browser tests need Node.js 18 or newer with npm"
        );
    }
    Ok(())
}

/// Runs one `cargo test`, passing its standard output through as it arrives (test binaries
/// print partial lines, `test name ... ` before `ok`, so bytes are forwarded, not lines) and
/// counting its `test result:` lines.
fn run_one(root: &Path, args: Vec<String>, env: &[(&str, &str)]) -> anyhow::Result<RunResult> {
    let mut child = workspace::cargo()
        .current_dir(root)
        .envs(env.iter().copied())
        .arg("test")
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let mut output = child
        .stdout
        .take()
        .context("cargo's stdout was not piped")?;
    let mut stdout = std::io::stdout();
    let mut counts = Counts::default();
    let mut line = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = match output.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).context("cannot read cargo's output"),
        };
        stdout.write_all(&buffer[..read])?;
        stdout.flush()?;
        for &byte in &buffer[..read] {
            if byte == b'\n' {
                counts.add_line(&String::from_utf8_lossy(&line));
                line.clear();
            } else {
                line.push(byte);
            }
        }
    }
    counts.add_line(&String::from_utf8_lossy(&line));
    let status = child.wait().context("cannot wait for cargo")?;
    Ok(RunResult {
        args,
        counts,
        succeeded: status.success(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(output: &str) -> (u64, u64, u64) {
        let mut counts = Counts::default();
        for line in output.lines() {
            counts.add_line(line);
        }
        (counts.passed, counts.failed, counts.ignored)
    }

    #[test]
    fn result_lines_are_summed_and_other_lines_ignored() {
        let output = "\
running 3 tests
test a ... ok
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

test b ... FAILED
test result: FAILED. 10 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.20s
   Doc-tests plexichat
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
a test that prints test result: ok. 99 passed; without being libtest
";
        assert_eq!(counts(output), (13, 2, 1));
    }

    #[test]
    fn the_summary_sums_every_run_and_names_the_failed_ones() {
        let run = |args: &str, passed, failed, succeeded| RunResult {
            args: args.split(' ').map(String::from).collect(),
            counts: Counts {
                passed,
                failed,
                ignored: 1,
            },
            succeeded,
        };
        assert_eq!(
            summary(&[run("--workspace", 400, 0, true), run("-p a", 20, 0, true)]),
            "420 passed, 0 failed, 2 ignored in 2 cargo test runs"
        );
        assert_eq!(
            summary(&[
                run("--workspace", 400, 2, false),
                run("-p a", 0, 0, false),
                run("-p b", 5, 0, true),
            ]),
            "405 passed, 2 failed, 3 ignored in 3 cargo test runs; failed: \
             `cargo test --workspace` (2 failed), \
             `cargo test -p a` (no test failed: see its build or crash output above)"
        );
    }

    #[test]
    fn every_workspace_plugin_is_tested_alone_and_with_the_inventory_backend() {
        let root = workspace::root();
        let plan = plan(&root).unwrap();
        for plugin in workspace::plugins(&root).unwrap() {
            for run in &plan[1..] {
                let run = &run.args;
                assert!(
                    run.windows(2)
                        .any(|pair| pair[0] == "--package" && pair[1] == plugin.name),
                    "{} missing from `cargo test {}`",
                    plugin.name,
                    run.join(" ")
                );
            }
        }
    }
}
