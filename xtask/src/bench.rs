//! `cargo xtask bench [--quick]`: measures what the framework costs against a bare axum
//! program (`tests/baseline`) in the same run, and writes `docs/BENCHMARKS.md`.
//!
//! Every figure is a median over alternating rounds with its spread (min–max), reported with
//! its ratio to the baseline measured in the same run. Nothing here asserts a timing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench_common::{CONNECTIONS, Server, ms, wrk, wrk_installed};
pub use crate::bench_common::{Plan, Samples};
use crate::build::{self, Selection};
use crate::{scale, workspace};

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
    /// Only the chat workload against Synapse (not part of `Everything`: it installs and
    /// runs a peer server); its section is replaced and the rest kept.
    Chat,
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

    if let Scope::Chat = scope {
        write_section(
            &path,
            crate::chat_bench::HEADING,
            &crate::chat_bench::run(plan, command)?,
        )?;
        return Ok(path);
    }

    eprintln!("bench: building the baseline");
    let baseline = baseline_binary(&flavor, &bench_dir, "baseline-axum", plan.release)?;
    // The baseline doing the route's storage read too: HTTP's, and start-up's and memory's.
    let baseline_kv = if matches!(scope, Scope::Http | Scope::StartUp | Scope::Everything) {
        baseline_binary(&flavor, &bench_dir, "baseline-axum-kv", plan.release)?
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
        write_section(&path, SCALE_HEADING, &section)?;
        return Ok(path);
    }
    if let Scope::Assets = scope {
        let section = crate::assets_bench::run(plan, &scratch, command)?;
        write_section(&path, crate::assets_bench::HEADING, &section)?;
        return Ok(path);
    }
    if let Scope::Tests = scope {
        write_section(&path, TESTS_HEADING, &test_manager(&root, plan)?)?;
        return Ok(path);
    }

    eprintln!("bench: building the app");
    let all = build_app(plan, &bench_dir, Selection::All, "plexichat-all")?;
    if let Scope::Http = scope {
        eprintln!("bench: HTTP throughput");
        let section = http_section(load(&all, &baselines, &scratch, plan)?, command);
        write_section(&path, HTTP_HEADING, &section)?;
        return Ok(path);
    }
    if let Scope::StartUp = scope {
        let (section, _) = start_up(&all, &baselines, &scratch, plan, command)?;
        let (start_up, memory) = section
            .split_at_checked(section.find(MEMORY_HEADING).unwrap_or(section.len()))
            .unwrap_or((&section, ""));
        write_section(&path, START_UP_HEADING, start_up)?;
        write_section(&path, MEMORY_HEADING, memory)?;
        return Ok(path);
    }
    if let Scope::Backup = scope {
        write_section(
            &path,
            BACKUP_HEADING,
            &backup(&all, &scratch, plan, command)?,
        )?;
        return Ok(path);
    }
    let report = whole_report(plan, command, &flavor, &all, &baselines, &scratch)?;
    std::fs::write(&path, report)?;
    Ok(path)
}

/// The whole report, every measurement in turn, for `all` (the app with every plugin).
fn whole_report(
    plan: Plan,
    command: &str,
    flavor: &build::Flavor,
    all: &Path,
    baselines: &Baselines<'_>,
    scratch: &Path,
) -> anyhow::Result<String> {
    let root = workspace::root();
    let one = build_app(
        plan,
        &root.join("target/bench"),
        Selection::Only(vec!["my_awesome_plugin".into()]),
        "plexichat-one",
    )?;

    let mut report = Report::new(plan, command, flavor);
    report.sizes(all, &one, baselines.memory)?;

    eprintln!("bench: start-up");
    let (start_up, baseline_start) = start_up(all, baselines, scratch, plan, command)?;
    report.text.push_str(&start_up);

    eprintln!("bench: HTTP throughput");
    report
        .text
        .push_str(&http_section(load(all, baselines, scratch, plan)?, command));

    eprintln!("bench: static assets against nginx");
    report
        .text
        .push_str(&crate::assets_bench::run(plan, scratch, command)?);

    eprintln!("bench: event dispatch (criterion)");
    report.dispatch(dispatch(&root, plan)?);

    eprintln!("bench: key-value store against direct sqlx");
    report.kv(&kv(&root, plan)?);

    eprintln!("bench: the test manager's runner, schedules and live updates");
    report.text.push_str(&test_manager(&root, plan)?);

    eprintln!("bench: backup against sqlite3 .backup");
    report.text.push_str(&backup(all, scratch, plan, command)?);

    let points = scale::measure(plan.scale, plan, flavor)?;
    report
        .text
        .push_str(&scale_section(&points, &baseline_start, command));
    Ok(report.finish())
}

/// Builds the baseline program `name` of `tests/baseline` and copies it into `bench_dir`.
fn baseline_binary(
    flavor: &build::Flavor,
    bench_dir: &Path,
    name: &str,
    release: bool,
) -> anyhow::Result<PathBuf> {
    let built = build::build_binary(flavor, "plexichat-baseline", name, &[], release)?;
    let path = bench_dir.join(name);
    std::fs::copy(&built, &path)?;
    Ok(path)
}

/// Builds the app with `selection`, statically linked, as `bench_dir/name`.
fn build_app(
    plan: Plan,
    bench_dir: &Path,
    selection: Selection,
    name: &str,
) -> anyhow::Result<PathBuf> {
    build::build_app(&build::Options {
        selection,
        release: plan.release,
        dynamic: false,
        out: bench_dir.join(name),
        with: Vec::new(),
    })
}

/// Replaces the section under `heading` of the report at `path` with `section` (appended if
/// the report has none, and the report created if there is none), keeping the rest.
fn write_section(path: &Path, heading: &str, section: &str) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, replace_section(&existing, heading, section))?;
    Ok(())
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
    let (config, database) = backup_database(all, &dir, plan)?;
    let size = std::fs::metadata(&database)?.len();
    let (mut theirs, mut ours, mut verify) = (Vec::new(), Vec::new(), Vec::new());
    let copy = dir.join("copy.db");
    let archive = dir.join("backup.tar");
    let megabytes = size as f64 / 1e6;
    for _ in 0..plan.backup_rounds {
        let _ = std::fs::remove_file(&copy);
        let dot_backup = format!(".backup '{}'", copy.display());
        let elapsed = timed(
            Path::new("sqlite3"),
            &[database.as_os_str(), dot_backup.as_ref()],
            "sqlite3 .backup",
        )?;
        theirs.push(megabytes / elapsed.as_secs_f64());
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(&archive);
        let elapsed = timed(
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
        let elapsed = timed(
            all,
            &["backup".as_ref(), "verify".as_ref(), archive.as_os_str()],
            "plexichat backup verify",
        )?;
        verify.push(megabytes / elapsed.as_secs_f64());
        let _ = std::fs::remove_file(&archive);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let measured = [Samples(theirs), Samples(ours), Samples(verify)];
    Ok(backup_section(size, &measured, command))
}

/// A data directory in `dir` with a configuration naming it and a migrated SQLite database
/// of `plan.backup_mib` of incompressible rows; returns the configuration and the database.
fn backup_database(all: &Path, dir: &Path, plan: Plan) -> anyhow::Result<(PathBuf, PathBuf)> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let config = dir.join("plexichat.toml");
    let mut document = toml_edit::DocumentMut::new();
    document["data"]["dir"] = toml_edit::value(data.to_string_lossy().as_ref());
    std::fs::write(&config, document.to_string())?;
    timed(
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
    timed(
        Path::new("sqlite3"),
        &[database.as_os_str(), fill.as_ref()],
        "filling the database",
    )?;
    Ok((config, database))
}

/// Runs `program` with `args` to the end; the wall time, or an error with its stderr.
fn timed(program: &Path, args: &[&std::ffi::OsStr], what: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = Command::new(program).args(args).output()?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(elapsed)
}

/// The backup section from a database of `size` bytes and the MB/s of `sqlite3 .backup`,
/// `backup create` and `backup verify`, in that order.
fn backup_section(size: u64, measured: &[Samples; 3], command: &str) -> String {
    let [base, ours, verify] = measured;
    let mut text = format!(
        "{BACKUP_HEADING} (a {:.0} MiB SQLite database, MB/s of database)\n\nWritten by `{command}`. \
         Both commands run whole, as an operator would, on the same file with a warm page cache, \
         alternating rounds.\n\n| what | median | spread | ratio to `sqlite3 .backup` |\n|---|---|---|---|\n",
        size as f64 / (1024.0 * 1024.0)
    );
    for (name, samples) in [
        ("`sqlite3 db '.backup out'` (Debian's sqlite3)", base),
        (
            "`plexichat backup create` (online snapshot, tar archive, SHA-256 per entry)",
            ours,
        ),
        (
            "`plexichat backup verify` (reads the archive, checks every checksum)",
            verify,
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
    text
}

/// The start-up and memory sections: exec to ready with a fresh and a warm data directory
/// and with the example configuration, against the baseline, alternating rounds; and the
/// time of `plugins list`. Returns them with the baseline's samples, which the scale
/// section compares with.
fn start_up(
    all: &Path,
    baselines: &Baselines<'_>,
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
    // The same-work baseline, warm: its database made by a first start, kept by the next.
    let kv_dir = scratch.join("kv-warm");
    let _ = std::fs::remove_dir_all(&kv_dir);
    std::fs::create_dir_all(&kv_dir)?;
    drop(Server::start(baselines.kv, &kv_dir, false)?);
    let mut baseline_start = Vec::new();
    let mut kv_start = Vec::new();
    let (mut framework_rss, mut kv_rss) = (None, None);
    for round in 0..plan.start_rounds {
        let fresh = scratch.join(format!("fresh-{round}"));
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh)?;
        let (server, elapsed) = Server::start(all, &fresh, true)?;
        drop(server);
        framework_start.push(ms(elapsed));
        // The same data directory again: the admin token, the database and every plugin's
        // migrations now exist.
        let (server, elapsed) = Server::start(all, &fresh, true)?;
        if framework_rss.is_none() {
            framework_rss = Some(server.idle_rss_kib()?);
        }
        drop(server);
        framework_warm.push(ms(elapsed));
        framework_configured.push(Server::start_ms(all, &configured, true)?);
        let (server, elapsed) = Server::start(baselines.kv, &kv_dir, false)?;
        if kv_rss.is_none() {
            kv_rss = Some(server.idle_rss_kib()?);
        }
        drop(server);
        kv_start.push(ms(elapsed));
        baseline_start.push(Server::start_ms(baselines.memory, &fresh, false)?);
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
            (
                "bare axum opening the same SQLite database, warm (`baseline-axum-kv`)",
                &Samples(kv_start),
            ),
            (
                "bare axum, nothing to open (`baseline-axum`)",
                &baseline_start,
            ),
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
        framework_rss.zip(kv_rss),
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
        "{START_UP_HEADING} (exec to the first 200 on `/ready`)\n\nWritten by `{command}`. \
         Both baselines carry the same middleware as the HTTP benchmark's.\n\n\
         | what | median | spread | ratio to the first row |\n|---|---|---|---|\n"
    );
    for (name, samples) in rows {
        let (min, max) = samples.spread();
        text.push_str(&format!(
            "| {name} | {:.1} ms | {min:.1}–{max:.1} ms | {:.2} |\n",
            samples.median(),
            samples.median() / base
        ));
    }
    text.push_str(
        "\nTarget: start-up to ready with a warm data directory ≤ 1.5× the baseline that opens \
         the same SQLite database.\n\n",
    );
    text.push_str(MEMORY_HEADING);
    match rss {
        Some((ours, theirs)) => text.push_str(&format!(
            "\n\nResident set after a warm start, idle 0.5 s: plexichat (all plugins) {ours} KiB, \
             bare axum with the same SQLite database and pool (`baseline-axum-kv`) {theirs} KiB \
             (ratio {:.2}; target ≤ 1.5).\n\n",
            ours as f64 / theirs.max(1) as f64
        )),
        None => text.push_str("\n\nNot measured.\n\n"),
    }
    text
}

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
         connection limit, the `security` plugin's request ID, headers and a rate limit \
         covering every path). The route reads the plugin's statistics from its key-value \
         store (one SQLite row through sqlx) per request, so the baseline of the ratio is \
         bare axum doing that same read (`baseline-axum-kv`: same table, query, pool and \
         pragmas) and answering the same body; bare axum answering from memory is shown for \
         scale. Both baselines carry the same kinds of middleware, from tower-http and \
         `tower_governor`: a body limit, a timeout, a request ID made and sent back, the four \
         security headers, a rate limit per client address and a panic guard.\n\n"
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

/// The two bare axum programs of `tests/baseline`.
struct Baselines<'a> {
    /// Answers from memory.
    memory: &'a Path,
    /// Reads the statistics from SQLite as the plugin does (built for the HTTP benchmark).
    kv: &'a Path,
}

/// The framework's configuration under HTTP load: the baselines' middleware has a rate limit.
const HTTP_CONFIG: &str = "[plugins.security]\nrate_limits = [{ prefix = \"/\", requests = 1000000000, per_seconds = 1 }]\n";

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
    // The baselines rate-limit every request per client (governor); so does the framework,
    // with one `security` rule covering every path, too generous to refuse any.
    let dir = dir.join("http");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("plexichat.toml"), HTTP_CONFIG)?;
    let dir = dir.as_path();
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
            "\nTargets: publishing to 10 sync handlers ≤ 1.5× the direct calls, with zero \
             allocations. Both columns include entering the async executor (`block_on`) once.\n\n",
        );
        // `analytics.record` checks the names, writes the dimensions as sorted JSON and
        // queues the record; the baseline queues the same fields, JSON already written.
        match (median("analytics/record"), median("analytics/bare_channel")) {
            (Some(record), Some(bare)) => self.text.push_str(&format!(
                "`analytics.record` (two dimensions): {record:.0} ns per call against {bare:.0} ns \
                 for a bare `try_send` of the same fields on a tokio channel: {:.2}×.\n\n",
                record / bare
            )),
            _ => self.text.push_str("`analytics.record`: missing\n\n"),
        }
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
