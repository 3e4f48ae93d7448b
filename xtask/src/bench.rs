//! `cargo xtask bench [--quick]`: measures what the framework costs against a bare axum
//! program (`tests/baseline`) in the same run, and writes `docs/BENCHMARKS.md`.
//!
//! Every figure is a median over alternating rounds with its spread (min–max), reported with
//! its ratio to the baseline measured in the same run. Nothing here asserts a timing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::build::{self, Selection};
use crate::{scale, workspace};

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Rounds of start-up and `plugins list` timing.
    pub start_rounds: usize,
    /// Rounds of load per server, alternating.
    pub load_rounds: usize,
    /// Seconds of load per round.
    pub load_seconds: u64,
    /// Criterion measurement time per benchmark, in seconds.
    pub criterion_seconds: u64,
    /// Optimised binaries (the published figures), or the dev profile (a smoke run that
    /// reuses the test suite's builds).
    pub release: bool,
    /// Plugin counts of the scale benchmark.
    pub scale: &'static [usize],
    /// Size of the SQLite database the backup benchmark backs up, in MiB.
    pub backup_mib: u64,
    /// Rounds of the backup benchmark, alternating.
    pub backup_rounds: usize,
}

impl Plan {
    /// A smoke run: every measurement once or twice, briefly, on unoptimised builds; it
    /// keeps the harness working and its figures mean nothing.
    pub const QUICK: Plan = Plan {
        start_rounds: 3,
        load_rounds: 1,
        load_seconds: 1,
        criterion_seconds: 1,
        release: false,
        scale: &[10],
        backup_mib: 16,
        backup_rounds: 1,
    };
    /// The run whose figures are published.
    pub const FULL: Plan = Plan {
        start_rounds: 15,
        load_rounds: 5,
        load_seconds: 10,
        criterion_seconds: 5,
        release: true,
        scale: &[10, 100, 1000],
        backup_mib: 1024,
        backup_rounds: 3,
    };

    /// Where this plan's report goes: the published `docs/BENCHMARKS.md`, or for a smoke run
    /// a file under `target/` that nobody commits.
    pub fn report_path(&self, root: &Path) -> PathBuf {
        if self.release {
            root.join("docs/BENCHMARKS.md")
        } else {
            root.join("target/bench/BENCHMARKS-quick.md")
        }
    }
}

/// A set of samples with its median and spread.
#[derive(Debug, Clone)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    /// The middle sample (the mean of the middle two for an even count).
    pub fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        if sorted.len().is_multiple_of(2) {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        } else {
            sorted[middle]
        }
    }

    /// The smallest and the largest sample.
    pub fn spread(&self) -> (f64, f64) {
        let min = self.0.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }
}

/// What a bench run measures.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Everything, scale included: the whole report.
    Everything,
    /// Only the scale benchmark with these plugin counts; its section of the report is
    /// replaced and the rest kept.
    Scale(Vec<usize>),
    /// Only the HTTP route overhead; its section of the report is replaced and the rest kept.
    Http,
    /// Only start-up and memory; their sections are replaced and the rest kept.
    StartUp,
    /// Only the backup benchmark; its section is replaced and the rest kept.
    Backup,
    /// Only the static asset benchmark against nginx; its section is replaced and the rest
    /// kept.
    Assets,
    /// Only the test manager's load (runner, schedules, live updates); its section is
    /// replaced and the rest kept.
    Tests,
}

/// Runs the measurements and writes the report; returns its path.
pub fn run(plan: Plan, scope: Scope, command: &str) -> anyhow::Result<PathBuf> {
    let root = workspace::root();
    let bench_dir = root.join("target/bench");
    let scratch = bench_dir.join("scratch");
    std::fs::create_dir_all(&scratch)?;
    let flavor = build::flavor(false)?;
    let path = plan.report_path(&root);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }

    eprintln!("bench: building the baseline");
    let baseline_binary = |name: &str| -> anyhow::Result<PathBuf> {
        let built = build::build_binary(&flavor, "plexichat-baseline", name, &[], plan.release)?;
        let path = bench_dir.join(name);
        std::fs::copy(&built, &path)?;
        Ok(path)
    };
    let baseline = baseline_binary("baseline-axum")?;
    // The HTTP benchmark's baseline does the route's storage read as well.
    let baseline_kv = if matches!(scope, Scope::Http | Scope::Everything) {
        baseline_binary("baseline-axum-kv")?
    } else {
        PathBuf::new()
    };
    let baselines = Baselines {
        memory: &baseline,
        kv: &baseline_kv,
    };

    if let Scope::Scale(counts) = scope {
        let mut baseline_start = Vec::new();
        for _ in 0..plan.start_rounds {
            baseline_start.push(Server::start_ms(&baseline, &scratch, false)?);
        }
        let baseline_start = Samples(baseline_start);
        let points = scale::measure(&counts, plan, &flavor)?;
        let section = scale_section(&points, &baseline_start, command);
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, replace_section(&existing, SCALE_HEADING, &section))?;
        return Ok(path);
    }

    if let Scope::Assets = scope {
        let section = crate::assets_bench::run(plan, &scratch, command)?;
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(
            &path,
            replace_section(&existing, crate::assets_bench::HEADING, &section),
        )?;
        return Ok(path);
    }

    if let Scope::Tests = scope {
        let section = test_manager(&root, plan)?;
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, replace_section(&existing, TESTS_HEADING, &section))?;
        return Ok(path);
    }

    eprintln!("bench: building the app");
    let all = build::build_app(&build::Options {
        selection: Selection::All,
        release: plan.release,
        dynamic: false,
        out: bench_dir.join("plexichat-all"),
        with: Vec::new(),
    })?;
    if let Scope::Http = scope {
        eprintln!("bench: HTTP throughput");
        let section = http_section(load(&all, &baselines, &scratch, plan)?, command);
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, replace_section(&existing, HTTP_HEADING, &section))?;
        return Ok(path);
    }
    if let Scope::StartUp = scope {
        let (section, _) = start_up(&all, &baseline, &scratch, plan, command)?;
        let (start_up, memory) = section
            .split_at_checked(section.find(MEMORY_HEADING).unwrap_or(section.len()))
            .unwrap_or((&section, ""));
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        let document = replace_section(&existing, START_UP_HEADING, start_up);
        std::fs::write(&path, replace_section(&document, MEMORY_HEADING, memory))?;
        return Ok(path);
    }
    if let Scope::Backup = scope {
        let section = backup(&all, &scratch, plan, command)?;
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, replace_section(&existing, BACKUP_HEADING, &section))?;
        return Ok(path);
    }
    let one = build::build_app(&build::Options {
        selection: Selection::Only(vec!["my_awesome_plugin".into()]),
        release: plan.release,
        dynamic: false,
        out: bench_dir.join("plexichat-one"),
        with: Vec::new(),
    })?;

    let mut report = Report::new(plan, command, &flavor);
    report.sizes(&all, &one, &baseline)?;

    eprintln!("bench: start-up");
    let (start_up, baseline_start) = start_up(&all, &baseline, &scratch, plan, command)?;
    report.text.push_str(&start_up);

    eprintln!("bench: HTTP throughput");
    report.text.push_str(&http_section(
        load(&all, &baselines, &scratch, plan)?,
        command,
    ));

    eprintln!("bench: static assets against nginx");
    report
        .text
        .push_str(&crate::assets_bench::run(plan, &scratch, command)?);

    eprintln!("bench: event dispatch (criterion)");
    report.dispatch(dispatch(&root, plan)?);

    eprintln!("bench: key-value store against direct sqlx");
    report.kv(&kv(&root, plan)?);

    eprintln!("bench: the test manager's runner, schedules and live updates");
    report.text.push_str(&test_manager(&root, plan)?);

    eprintln!("bench: backup against sqlite3 .backup");
    report
        .text
        .push_str(&backup(&all, &scratch, plan, command)?);

    let points = scale::measure(plan.scale, plan, &flavor)?;
    report
        .text
        .push_str(&scale_section(&points, &baseline_start, command));

    std::fs::write(&path, report.finish())?;
    Ok(path)
}

const SCALE_HEADING: &str = "## Scale";
const TESTS_HEADING: &str = "## Test manager";

/// The test manager's section, written by its load example (`plugins/test_manager/examples/
/// load.rs`): release build and full sizes, or the dev build and small sizes with `--quick`.
fn test_manager(root: &Path, plan: Plan) -> anyhow::Result<String> {
    let out = root.join("target/bench/test-manager.md");
    let mut command = workspace::cargo();
    command
        .current_dir(root)
        .args(["run", "--package", "test_manager", "--example", "load"]);
    if plan.release {
        command.arg("--release");
    }
    command.args(["--", "--out"]).arg(&out);
    if !plan.release {
        command.arg("--quick");
    }
    let status = command
        .status()
        .context("cannot run the test manager's load")?;
    anyhow::ensure!(status.success(), "the test manager's load failed");
    let section = std::fs::read_to_string(&out)?;
    anyhow::ensure!(
        section.starts_with(TESTS_HEADING),
        "unexpected load report: {section}"
    );
    Ok(section)
}
const HTTP_HEADING: &str = "## HTTP route overhead";
const START_UP_HEADING: &str = "## Start-up";
const MEMORY_HEADING: &str = "## Memory";
const BACKUP_HEADING: &str = "## Backup";

/// The backup section: `plexichat backup create` on a SQLite database of
/// `plan.backup_mib` (the whole command: online snapshot, then the archive with a SHA-256 per
/// entry) against Debian's `sqlite3 db '.backup out'` on the same file, alternating rounds;
/// and `backup verify` reading the archive back.
fn backup(all: &Path, scratch: &Path, plan: Plan, command: &str) -> anyhow::Result<String> {
    let sqlite3 = Command::new("sqlite3").arg("--version").output();
    if !sqlite3.is_ok_and(|output| output.status.success()) {
        bail!(
            "sqlite3 is not installed; the backup benchmark compares with it: run `apt-get install sqlite3`"
        );
    }
    let dir = scratch.join("backup");
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let config = dir.join("plexichat.toml");
    let mut document = toml_edit::DocumentMut::new();
    document["data"]["dir"] = toml_edit::value(data.to_string_lossy().as_ref());
    std::fs::write(&config, document.to_string())?;
    let run = |program: &Path, args: &[&std::ffi::OsStr], what: &str| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let output = Command::new(program).args(args).output()?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            output.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(elapsed)
    };
    run(
        all,
        &[
            "db".as_ref(),
            "migrate".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
        "plexichat db migrate",
    )?;
    let database = data.join("plexichat.db");
    // 4,000 random bytes per row: about 256 rows per MiB, none of it compressible.
    let fill = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
         INSERT INTO plexichat_kv (plugin, key, value) SELECT 'bench', printf('key-%09d', i), randomblob(4000) FROM n; \
         PRAGMA wal_checkpoint(TRUNCATE);",
        rows = plan.backup_mib * 256
    );
    run(
        Path::new("sqlite3"),
        &[database.as_os_str(), fill.as_ref()],
        "filling the database",
    )?;
    let size = std::fs::metadata(&database)?.len();
    let (mut theirs, mut ours, mut verify) = (Vec::new(), Vec::new(), Vec::new());
    let copy = dir.join("copy.db");
    let archive = dir.join("backup.tar");
    let megabytes = size as f64 / 1e6;
    for _ in 0..plan.backup_rounds {
        let _ = std::fs::remove_file(&copy);
        let dot_backup = format!(".backup '{}'", copy.display());
        let elapsed = run(
            Path::new("sqlite3"),
            &[database.as_os_str(), dot_backup.as_ref()],
            "sqlite3 .backup",
        )?;
        theirs.push(megabytes / elapsed.as_secs_f64());
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(&archive);
        let elapsed = run(
            all,
            &[
                "backup".as_ref(),
                "create".as_ref(),
                "--out".as_ref(),
                archive.as_os_str(),
                "--config".as_ref(),
                config.as_os_str(),
            ],
            "plexichat backup create",
        )?;
        ours.push(megabytes / elapsed.as_secs_f64());
        let elapsed = run(
            all,
            &["backup".as_ref(), "verify".as_ref(), archive.as_os_str()],
            "plexichat backup verify",
        )?;
        verify.push(megabytes / elapsed.as_secs_f64());
        let _ = std::fs::remove_file(&archive);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let base = Samples(theirs);
    let mut text = format!(
        "{BACKUP_HEADING} (a {:.0} MiB SQLite database, MB/s of database)\n\nWritten by `{command}`. \
         Both commands run whole, as an operator would, on the same file with a warm page cache, \
         alternating rounds.\n\n| what | median | spread | ratio to `sqlite3 .backup` |\n|---|---|---|---|\n",
        size as f64 / (1024.0 * 1024.0)
    );
    for (name, samples) in [
        ("`sqlite3 db '.backup out'` (Debian's sqlite3)", &base),
        (
            "`plexichat backup create` (online snapshot, tar archive, SHA-256 per entry)",
            &Samples(ours),
        ),
        (
            "`plexichat backup verify` (reads the archive, checks every checksum)",
            &Samples(verify),
        ),
    ] {
        let (min, max) = samples.spread();
        text.push_str(&format!(
            "| {name} | {:.0} MB/s | {min:.0}–{max:.0} MB/s | {:.2} |\n",
            samples.median(),
            samples.median() / base.median()
        ));
    }
    text.push_str("\nTarget: `backup create` at ≥ 0.8 of `sqlite3 .backup`.\n\n");
    Ok(text)
}

/// The start-up and memory sections: exec to ready with a fresh and a warm data directory
/// and with the example configuration, against the baseline, alternating rounds; and the
/// time of `plugins list`. Returns them with the baseline's samples, which the scale
/// section compares with.
fn start_up(
    all: &Path,
    baseline: &Path,
    scratch: &Path,
    plan: Plan,
    command: &str,
) -> anyhow::Result<(String, Samples)> {
    let mut framework_start = Vec::new();
    let mut framework_warm = Vec::new();
    let mut framework_configured = Vec::new();
    // A data directory holding the example configuration, which every start must validate.
    let configured = scratch.join("configured");
    std::fs::create_dir_all(&configured)?;
    let example = Command::new(all)
        .args(["config", "example"])
        .stderr(Stdio::inherit())
        .output()?;
    anyhow::ensure!(example.status.success(), "config example failed");
    std::fs::write(configured.join("plexichat.toml"), &example.stdout)?;
    let mut baseline_start = Vec::new();
    let (mut framework_rss, mut baseline_rss) = (None, None);
    for round in 0..plan.start_rounds {
        let fresh = scratch.join(format!("fresh-{round}"));
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh)?;
        let (server, elapsed) = Server::start(all, &fresh, true)?;
        if framework_rss.is_none() {
            framework_rss = Some(server.idle_rss_kib()?);
        }
        drop(server);
        framework_start.push(ms(elapsed));
        // The same data directory again: the admin token, the database and every plugin's
        // migrations now exist.
        framework_warm.push(Server::start_ms(all, &fresh, true)?);
        framework_configured.push(Server::start_ms(all, &configured, true)?);
        let (server, elapsed) = Server::start(baseline, &fresh, false)?;
        if baseline_rss.is_none() {
            baseline_rss = Some(server.idle_rss_kib()?);
        }
        drop(server);
        baseline_start.push(ms(elapsed));
    }
    let mut list_times = Vec::new();
    for _ in 0..plan.start_rounds {
        let started = Instant::now();
        let status = Command::new(all)
            .args(["plugins", "list"])
            .current_dir(scratch)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "plugins list failed");
        list_times.push(ms(started.elapsed()));
    }
    let baseline_start = Samples(baseline_start);
    let section = start_up_section(
        &[
            ("bare axum baseline", &baseline_start),
            (
                "plexichat, all plugins, fresh data directory",
                &Samples(framework_start),
            ),
            (
                "plexichat, all plugins, warm data directory (database and migrations in place)",
                &Samples(framework_warm),
            ),
            (
                "plexichat, all plugins, warm, with the example `plexichat.toml`",
                &Samples(framework_configured),
            ),
            (
                "`plexichat plugins list` (whole command)",
                &Samples(list_times),
            ),
        ],
        framework_rss.zip(baseline_rss),
        command,
    );
    Ok((section, baseline_start))
}

/// The start-up and memory sections from their measurements; the first row is the baseline.
fn start_up_section(rows: &[(&str, &Samples)], rss: Option<(u64, u64)>, command: &str) -> String {
    let base = rows
        .first()
        .map_or(f64::NAN, |(_, samples)| samples.median());
    let mut text = format!(
        "{START_UP_HEADING} (exec to the first 200 on `/ready`)\n\nWritten by `{command}`.\n\n\
         | what | median | spread | ratio to baseline |\n|---|---|---|---|\n"
    );
    for (name, samples) in rows {
        let (min, max) = samples.spread();
        text.push_str(&format!(
            "| {name} | {:.1} ms | {min:.1}–{max:.1} ms | {:.2} |\n",
            samples.median(),
            samples.median() / base
        ));
    }
    text.push_str("\nTarget: start-up to ready (warm) ≤ 1.5× bare axum.\n\n");
    text.push_str(MEMORY_HEADING);
    match rss {
        Some((ours, theirs)) => text.push_str(&format!(
            "\n\nResident set after start, idle 0.5 s: plexichat (all plugins) {ours} KiB, bare \
             axum {theirs} KiB (ratio {:.2}).\n\n",
            ours as f64 / theirs.max(1) as f64
        )),
        None => text.push_str("\n\nNot measured.\n\n"),
    }
    text
}

/// The client connection counts the HTTP benchmark runs at: a moderate and a heavy load.
const CONNECTIONS: [u32; 2] = [64, 256];

/// Requests per second at one connection count: ours and both baselines'.
struct LoadPoint {
    connections: u32,
    /// plexichat.
    ours: Samples,
    /// Bare axum doing the route's SQLite read.
    kv: Samples,
    /// Bare axum answering from memory.
    memory: Samples,
}

type Load = Vec<LoadPoint>;

/// The HTTP section of the report.
fn http_section(load: Option<Load>, command: &str) -> String {
    let mut text = format!(
        "{HTTP_HEADING} (`GET /api/v1/awesome/status`)\n\nWritten by `{command}`. `wrk -t1` \
         on loopback at each connection count, rotating servers each round; the plexichat \
         binary has all plugins and the full middleware and connection layer (timeouts, \
         connection limit, the `security` plugin's request ID, headers and rate limit). The \
         route reads the plugin's statistics from its key-value store (one SQLite row through \
         sqlx) per request, so the baseline of the ratio is bare axum doing that same read \
         (`baseline-axum-kv`: same table, query, pool and pragmas) and answering the same \
         body; bare axum answering from memory is shown for scale.\n\n"
    );
    let Some(load) = load else {
        text.push_str("Not measured: `wrk` was not installed (`apt-get install wrk`).\n\n");
        return text;
    };
    text.push_str(
        "| connections | bare axum, from memory | bare axum, same SQLite read | plexichat | \
         ratio to the same read |\n|---|---|---|---|---|\n",
    );
    let cell = |samples: &Samples| {
        let (min, max) = samples.spread();
        format!("{:.0} ({min:.0}–{max:.0})", samples.median())
    };
    for point in &load {
        text.push_str(&format!(
            "| {} | {} | {} | {} | **{:.2}** |\n",
            point.connections,
            cell(&point.memory),
            cell(&point.kv),
            cell(&point.ours),
            point.ours.median() / point.kv.median()
        ));
    }
    text.push_str(
        "\nMedians with their spread (min–max), requests per second. Target: a ratio of at \
         least 0.95 at both connection counts.\n\n",
    );
    text
}

/// `document` with the section under `heading` (up to the next `## ` heading) replaced by
/// `section`, or with `section` appended if it has none.
fn replace_section(document: &str, heading: &str, section: &str) -> String {
    let Some(start) = document
        .match_indices(heading)
        .map(|(at, _)| at)
        .find(|&at| at == 0 || document[..at].ends_with('\n'))
    else {
        let mut out = document.to_string();
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(section);
        return out;
    };
    let rest = &document[start + heading.len()..];
    let end = rest
        .find("\n## ")
        .map_or(document.len(), |at| start + heading.len() + at + 1);
    format!("{}{section}{}", &document[..start], &document[end..])
}

/// The scale section of the report.
fn scale_section(points: &[scale::Point], baseline_start: &Samples, command: &str) -> String {
    let mut text = format!(
        "{SCALE_HEADING}\n\nWritten by `{command}`. For each N, N synthetic plugin crates \
         (a route, an event of their own with one handler, a configuration section, three CLI \
         commands in a category of their own) in a \
         scratch workspace outside the repository, wired into a copy of the app by the real \
         codegen. Build time is the plugins and the app, dependencies already built. Start-up \
         is exec to the first 200 on `/ready` with a fresh data directory (bare axum: {:.1} ms \
         in the same run). The route is the last plugin's `GET /hello`, which reads its \
         configuration and publishes its event, under `wrk -t1 -c64`.\n\n\
         | plugins | build | binary | start-up (median, spread) | per plugin since previous \
         | start-up / bare axum | RSS idle | route requests/s |\n\
         |---|---|---|---|---|---|---|---|\n",
        baseline_start.median()
    );
    let mut previous: Option<&scale::Point> = None;
    for point in points {
        let (min, max) = point.start.spread();
        let marginal = previous.map_or("–".to_string(), |before| {
            let added = point.plugins.abs_diff(before.plugins).max(1) as f64;
            format!(
                "{:.1} µs",
                (point.start.median() - before.start.median()) * 1000.0 / added
            )
        });
        let rate = point
            .route_rate
            .map_or("not measured".to_string(), |rate| format!("{rate:.0}"));
        text.push_str(&format!(
            "| {} | {:.1} s | {:.2} MiB | {:.1} ms ({min:.1}–{max:.1}) | {marginal} | {:.2} \
             | {} KiB | {rate} |\n",
            point.plugins,
            point.build.as_secs_f64(),
            point.size as f64 / (1024.0 * 1024.0),
            point.start.median(),
            point.start.median() / baseline_start.median(),
            point.rss_kib,
        ));
        previous = Some(point);
    }
    text.push_str(
        "\nTargets: start-up grows no worse than linearly (the per-plugin column does not \
         grow with N), 1000 plugins start in under 100 ms, and route and event lookups are not \
         linear scans (the route rate does not fall with N).\n\n",
    );
    text.push_str(
        "Command-line help, exec to exit (medians, alternating rounds): `--help` lists every \
         plugin's command category; `<category> stats --help` builds the last plugin's \
         category in full.\n\n\
         | plugins | `--version` | `--help` | `<category> stats --help` | `--help` / `--version` \
         | `stats --help` / `--version` |\n|---|---|---|---|---|---|\n",
    );
    for point in points {
        let version = point.version.median();
        text.push_str(&format!(
            "| {} | {version:.1} ms | {:.1} ms | {:.1} ms | {:.2} | {:.2} |\n",
            point.plugins,
            point.help.median(),
            point.command_help.median(),
            point.help.median() / version,
            point.command_help.median() / version,
        ));
    }
    text.push_str("\nTarget: at 1000 plugins, both helps within 10 ms and 2× `--version`.\n\n");
    text
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A server process, stopped with SIGINT when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// Starts `binary serve` in `dir` and waits for the first 200 on `/ready`; returns the
    /// server and the time from exec to that answer.
    pub(crate) fn start(
        binary: &Path,
        dir: &Path,
        framework: bool,
    ) -> anyhow::Result<(Server, Duration)> {
        let started = Instant::now();
        let mut command = Command::new(binary);
        command.current_dir(dir);
        if framework {
            command.arg("serve");
        }
        let mut child = command
            .args(["--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "warn,plexichat::server=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        // Read the log on a thread of its own, so that a server that never prints its
        // address fails the run after 30 s instead of hanging it; the thread keeps draining
        // the log afterwards so the server never blocks on a full pipe.
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("address=").nth(1)
                    && let Some(found) = found.take()
                {
                    let _ = found.send(rest.trim().to_string());
                }
            }
        });
        let addr: SocketAddr = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse()?,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "{} printed no `serving address=` line within 30 s",
                    binary.display()
                );
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get_status(addr, "/ready") != Some(200) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} never became ready",
                binary.display()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let elapsed = started.elapsed();
        Ok((Server { child, addr }, elapsed))
    }

    /// [`Server::start`] and stop at once; the milliseconds to ready.
    pub(crate) fn start_ms(binary: &Path, dir: &Path, framework: bool) -> anyhow::Result<f64> {
        let (server, elapsed) = Server::start(binary, dir, framework)?;
        drop(server);
        Ok(ms(elapsed))
    }

    /// VmRSS in KiB after half a second idle, once start-up's transient allocations settled.
    pub(crate) fn idle_rss_kib(&self) -> anyhow::Result<u64> {
        std::thread::sleep(Duration::from_millis(500));
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of `GET path`, or `None` if the server does not answer yet. A bench
/// harness probe, not a client: one request, `Connection: close`, status line only.
pub(crate) fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The two bare axum programs of `tests/baseline`.
struct Baselines<'a> {
    /// Answers from memory.
    memory: &'a Path,
    /// Reads the statistics from SQLite as the plugin does (built for the HTTP benchmark).
    kv: &'a Path,
}

/// Requests per second of each server under `wrk` at each of [`CONNECTIONS`], rotating
/// which goes first each round; `None` without wrk.
fn load(
    framework: &Path,
    baselines: &Baselines<'_>,
    dir: &Path,
    plan: Plan,
) -> anyhow::Result<Option<Load>> {
    if !wrk_installed() {
        return Ok(None);
    }
    let mut results = Vec::new();
    for connections in CONNECTIONS {
        // Ours, the same-work baseline, the in-memory one.
        let mut rates: [Vec<f64>; 3] = Default::default();
        let servers = [
            (framework, true),
            (baselines.kv, false),
            (baselines.memory, false),
        ];
        for round in 0..plan.load_rounds {
            // Rotate which server goes first so drift in the machine hits all alike.
            for turn in 0..servers.len() {
                let which = (round + turn) % servers.len();
                let (binary, is_framework) = servers[which];
                let (server, _) = Server::start(binary, dir, is_framework)?;
                let url = format!("http://{}/api/v1/awesome/status", server.addr);
                wrk(&url, 1, connections)?;
                rates[which].push(wrk(&url, plan.load_seconds, connections)?);
            }
        }
        let [ours, kv, memory] = rates.map(Samples);
        results.push(LoadPoint {
            connections,
            ours,
            kv,
            memory,
        });
    }
    Ok(Some(results))
}

fn wrk_installed() -> bool {
    let installed = Command::new("wrk").arg("--version").output().is_ok();
    if !installed {
        eprintln!("bench: wrk is not installed (apt-get install wrk); skipping HTTP throughput");
    }
    installed
}

/// Requests per second of `GET path` after a one-second warm-up; `None` without wrk.
pub(crate) fn rate(addr: SocketAddr, path: &str, seconds: u64) -> anyhow::Result<Option<f64>> {
    if !wrk_installed() {
        return Ok(None);
    }
    let url = format!("http://{addr}{path}");
    wrk(&url, 1, CONNECTIONS[0])?;
    wrk(&url, seconds, CONNECTIONS[0]).map(Some)
}

/// Requests per second of `GET path` at `connections` connections after a one-second
/// warm-up; an error without wrk.
pub(crate) fn wrk_rate(
    addr: SocketAddr,
    path: &str,
    seconds: u64,
    connections: u32,
) -> anyhow::Result<f64> {
    if !wrk_installed() {
        bail!("wrk is not installed; run `apt-get install wrk`");
    }
    let url = format!("http://{addr}{path}");
    wrk(&url, 1, connections)?;
    wrk(&url, seconds, connections)
}

/// Runs wrk with one thread (the server gets the other core) and `connections` connections.
fn wrk(url: &str, seconds: u64, connections: u32) -> anyhow::Result<f64> {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            url,
        ])
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(!text.contains("Non-2xx"), "wrk saw errors: {text}");
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("wrk printed no rate: {text}"))
}

/// Median nanoseconds per benchmark id, and allocations per publish.
struct Dispatch {
    medians: Vec<(String, f64)>,
    allocations: serde_json::Value,
}

fn dispatch(root: &Path, plan: Plan) -> anyhow::Result<Dispatch> {
    let criterion_dir = root.join("target/criterion");
    let _ = std::fs::remove_dir_all(&criterion_dir);
    let status = workspace::cargo()
        .current_dir(root)
        .args([
            "bench",
            "--profile",
            if plan.release { "bench" } else { "dev" },
        ])
        .args(["--package", "plexichat-tests", "--bench", "dispatch", "--"])
        .args(["--warm-up-time", "1"])
        .args(["--measurement-time", &plan.criterion_seconds.to_string()])
        .args(["--noplot"])
        .status()
        .context("cannot run cargo bench")?;
    anyhow::ensure!(status.success(), "cargo bench failed");
    let mut medians = Vec::new();
    for path in files_named(&criterion_dir, "benchmark.json") {
        if !path.parent().is_some_and(|dir| dir.ends_with("new")) {
            continue;
        }
        let benchmark: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let estimates: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
            path.with_file_name("estimates.json"),
        )?)?;
        let id = benchmark["full_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let median = estimates["median"]["point_estimate"]
            .as_f64()
            .unwrap_or(f64::NAN);
        medians.push((id, median));
    }
    medians.sort_by(|a, b| a.0.cmp(&b.0));
    let allocations = serde_json::from_str(&std::fs::read_to_string(
        root.join("target/bench/dispatch-allocations.json"),
    )?)?;
    Ok(Dispatch {
        medians,
        allocations,
    })
}

/// Runs the key-value benchmark on SQLite and on a throwaway PostgreSQL (or the server
/// `PLEXICHAT_TEST_POSTGRES` names) and returns its report.
fn kv(root: &Path, plan: Plan) -> anyhow::Result<serde_json::Value> {
    let (cluster, url) = crate::postgres::Cluster::from_env_or_start()?;
    let mut command = workspace::cargo();
    command
        .current_dir(root)
        .env(crate::postgres::URL_VAR, &url)
        .args([
            "bench",
            "--profile",
            if plan.release { "bench" } else { "dev" },
        ])
        .args(["--package", "plexichat-tests", "--bench", "kv", "--"]);
    if !plan.release {
        command.arg("--quick");
    }
    let status = command
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run cargo bench")?;
    anyhow::ensure!(status.success(), "the key-value benchmark failed");
    drop(cluster);
    Ok(serde_json::from_str(&std::fs::read_to_string(
        root.join("target/bench/kv.json"),
    )?)?)
}

fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_named(&path, name));
        } else if path.file_name().is_some_and(|file| file == name) {
            found.push(path);
        }
    }
    found
}

/// The Markdown report, built section by section.
struct Report {
    text: String,
}

impl Report {
    fn new(plan: Plan, command: &str, flavor: &build::Flavor) -> Report {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let rustc = Command::new("rustc")
            .arg("--version")
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
            .unwrap_or_default();
        let profile = if plan.release {
            "release profile (thin LTO, stripped)"
        } else {
            "dev profile (a smoke run: these figures mean nothing)"
        };
        let mut text = String::new();
        text.push_str("# Benchmarks\n\n");
        text.push_str(&format!(
            "Written by `{command}`. Every figure is the median of the rounds measured in this \
             run, with its spread (min–max), and is compared with the bare axum program \
             `tests/baseline` measured in the same run, alternating rounds. Targets from the \
             benchmarks issue are reported, not asserted.\n\n"
        ));
        text.push_str(&format!(
            "- Machine: {cores} cores, {cpu}\n- Toolchain: {rustc}\n- Binaries: {profile}, all \
             linked as `{flavor:?}`\n- Plan: {} start-up rounds, {} load rounds of {} s, \
             criterion {} s per benchmark\n\n",
            plan.start_rounds, plan.load_rounds, plan.load_seconds, plan.criterion_seconds
        ));
        Report { text }
    }

    fn sizes(&mut self, all: &Path, one: &Path, baseline: &Path) -> anyhow::Result<()> {
        let mib = |path: &Path| -> anyhow::Result<f64> {
            Ok(std::fs::metadata(path)?.len() as f64 / (1024.0 * 1024.0))
        };
        let (all, one, base) = (mib(all)?, mib(one)?, mib(baseline)?);
        self.text
            .push_str("## Size\n\n| binary | size | ratio to baseline |\n|---|---|---|\n");
        self.text
            .push_str(&format!("| bare axum baseline | {base:.2} MiB | 1.00 |\n"));
        self.text.push_str(&format!(
            "| plexichat, one plugin | {one:.2} MiB | {:.2} |\n",
            one / base
        ));
        self.text.push_str(&format!(
            "| plexichat, all plugins | {all:.2} MiB | {:.2} |\n\n",
            all / base
        ));
        Ok(())
    }

    fn dispatch(&mut self, dispatch: Dispatch) {
        self.text
            .push_str("## Event dispatch (criterion, median per publish)\n\n");
        self.text.push_str("| handlers | publish | direct calls | ratio | allocations per publish |\n|---|---|---|---|---|\n");
        let median = |id: &str| {
            dispatch
                .medians
                .iter()
                .find(|(name, _)| name == id)
                .map(|(_, ns)| *ns)
        };
        for case in ["sync_1", "sync_10", "sync_100", "async_10"] {
            let publish = median(&format!("publish/{case}"));
            let direct = median(&format!("direct/{case}"));
            let allocations = dispatch.allocations[case].as_f64().unwrap_or(f64::NAN);
            match (publish, direct) {
                (Some(publish), Some(direct)) => self.text.push_str(&format!(
                    "| {case} | {publish:.0} ns | {direct:.0} ns | {:.2} | {allocations} |\n",
                    publish / direct
                )),
                _ => self.text.push_str(&format!(
                    "| {case} | missing | missing | | {allocations} |\n"
                )),
            }
        }
        self.text.push_str(
            "\nTargets: publishing to 10 sync handlers ≤ 2× the direct calls, with zero \
             allocations. Both columns include entering the async executor (`block_on`) once.\n\n",
        );
    }

    fn kv(&mut self, report: &serde_json::Value) {
        self.text.push_str(
            "## Key-value store (plugin API against the same statements through sqlx)\n\n",
        );
        self.text.push_str(
            "| engine | operation | plugin API | direct sqlx | ratio | p99 API | p99 direct |\n|---|---|---|---|---|---|---|\n",
        );
        for engine in ["sqlite", "postgres"] {
            for operation in ["set", "get"] {
                let row = &report[engine][operation];
                let number = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
                if row.is_null() {
                    self.text
                        .push_str(&format!("| {engine} | {operation} | missing | | | | |\n"));
                    continue;
                }
                self.text.push_str(&format!(
                    "| {engine} | {operation} | {:.0}/s | {:.0}/s | {:.2} | {:.0} µs | {:.0} µs |\n",
                    number("api_per_second"),
                    number("direct_per_second"),
                    number("ratio"),
                    number("api_p99_us"),
                    number("direct_p99_us"),
                ));
            }
        }
        self.text.push_str(
            "\nOne connection's worth of work at a time (a loop of awaited operations over 1,000 \
             keys, 100-byte values); rounds alternate between the two, throughput is the median \
             round and p99 is over every operation. Target: the plugin API at ≥ 0.9 of direct.\n\n",
        );
    }

    fn finish(mut self) -> String {
        self.text.push_str(
            "## Where the gaps come from\n\nWhat profiling found behind each figure that misses \
             its target, what was fixed and what remains: [performance.md](performance.md).\n",
        );
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let check = |values: &[f64], median: f64, spread: (f64, f64)| {
            let samples = Samples(values.to_vec());
            assert_eq!(samples.median(), median, "{values:?}");
            assert_eq!(samples.spread(), spread, "{values:?}");
        };
        check(&[3.0], 3.0, (3.0, 3.0));
        check(&[5.0, 1.0, 3.0], 3.0, (1.0, 5.0));
        check(&[4.0, 1.0, 3.0, 2.0], 2.5, (1.0, 4.0));
    }

    #[test]
    fn the_scale_section_is_replaced_in_place_or_appended() {
        let report = "# Benchmarks\n\n## Size\n\nsmall\n\n## Scale\n\nold\n\n## Where\n\nwhy\n";
        assert_eq!(
            replace_section(report, "## Scale", "## Scale\n\nnew\n\n"),
            "# Benchmarks\n\n## Size\n\nsmall\n\n## Scale\n\nnew\n\n## Where\n\nwhy\n"
        );
        let last = "# Benchmarks\n\n## Scale\n\nold\n";
        assert_eq!(
            replace_section(last, "## Scale", "## Scale\n\nnew\n"),
            "# Benchmarks\n\n## Scale\n\nnew\n"
        );
        assert_eq!(
            replace_section("# Benchmarks\n", "## Scale", "## Scale\n"),
            "# Benchmarks\n\n## Scale\n"
        );
        assert_eq!(replace_section("", "## Scale", "## Scale\n"), "## Scale\n");
    }

    #[test]
    fn files_are_found_recursively() {
        let root = workspace::root().join("xtask");
        let found = files_named(&root, "Cargo.toml");
        assert_eq!(found, [root.join("Cargo.toml")]);
    }
}
