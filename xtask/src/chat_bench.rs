//! `cargo xtask bench chat`: the chat workload the peers were measured with
//! (`tests/chatload/harness/`, a copy of the harness's scripts), run against PlexiChat with
//! its default plugins and against Synapse, on SQLite and on PostgreSQL, one after the other
//! in the same run on the same machine; then what the peers were not measured on: thousands
//! of idle WebSockets, and a channel of a million messages. Writes the report's chat section.
//!
//! Each server gets the same steps in the same order (start twice, set up 17 people in one
//! channel, sends, history, search, uploads, send-to-delivery latency idle and under load,
//! memory), and the table gives each figure with its ratio to the peer's. Nothing asserts a
//! figure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::bench_common::{Plan, Server, get_status, memory_kib, stop};
use crate::build::{self, Selection};
use crate::postgres::{Cluster, free_port};
use crate::workspace;

/// The report's heading for this section.
pub const HEADING: &str = "## Chat";

/// People in the benchmark's channel, as the peers were measured with.
const USERS: usize = 17;

/// One `RESULT key=value …` line of a harness script or of `chatload`.
type Figures = BTreeMap<String, f64>;

/// A database engine both servers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
        }
    }
}

/// What one server measured.
#[derive(Debug, Default)]
struct Column {
    /// "PlexiChat + SQLite", …
    title: String,
    /// Seconds from exec to the first 200: on an empty database, then again on the same one.
    start_first: f64,
    start_second: f64,
    /// `VmRSS` after setup, idle; after the load; and the peak, in KiB.
    rss_idle: u64,
    rss_after: u64,
    rss_peak: u64,
    /// Each step's figures by name (`send16`, `send1`, `history`, `search`, `upload`,
    /// `idle`, `loaded`).
    steps: BTreeMap<&'static str, Figures>,
    /// PlexiChat only: the idle WebSockets, posting with a webhook endpoint, and the channel
    /// of many messages.
    fanout: Option<Figures>,
    webhooks: Option<Figures>,
    stored: Option<Stored>,
}

/// History and search in a channel of `messages` messages.
#[derive(Debug, Default)]
struct Stored {
    messages: u64,
    seed_seconds: f64,
    start_seconds: f64,
    /// Sequential latencies by probe name.
    probes: Vec<(&'static str, Figures)>,
    /// wrk rates at 16 connections.
    history: Figures,
    search: Figures,
}

/// Measures every server and answers the report's section.
pub fn run(plan: Plan, command: &str) -> anyhow::Result<String> {
    let root = workspace::root();
    let dir = root.join("target/bench/chat");
    std::fs::create_dir_all(&dir)?;
    let harness = root.join("tests/chatload/harness");
    ensure!(
        crate::bench_common::wrk_installed(),
        "the chat benchmark needs wrk: `apt-get install wrk`"
    );
    eprintln!("bench chat: building plexichat (default plugins) and chatload");
    let plexichat = build::build_app(&build::Options {
        selection: Selection::Default,
        release: plan.release,
        dynamic: false,
        out: dir.join("plexichat"),
        with: Vec::new(),
    })?;
    let flavor = build::flavor(false)?;
    let built = build::build_binary(&flavor, "plexichat-chatload", "chatload", &[], plan.release)?;
    let chatload = dir.join("chatload");
    std::fs::copy(&built, &chatload)?;
    let tools = Tools {
        chatload,
        harness,
        plan,
    };

    let engines: &[Engine] = if plan.chat.postgres {
        &[Engine::Sqlite, Engine::Postgres]
    } else {
        &[Engine::Sqlite]
    };
    let synapse = if plan.chat.synapse {
        Some(install_synapse(&dir)?)
    } else {
        None
    };
    let mut columns = Vec::new();
    for &engine in engines {
        eprintln!("bench chat: PlexiChat on {}", engine.name());
        columns.push(measure_plexichat(&tools, &plexichat, &dir, engine)?);
        if let Some(python) = &synapse {
            eprintln!("bench chat: Synapse on {}", engine.name());
            columns.push(measure_synapse(&tools, python, &dir, engine)?);
        }
    }
    Ok(section(&columns, plan, command))
}

/// The client programs and how long to run them.
struct Tools {
    chatload: PathBuf,
    harness: PathBuf,
    plan: Plan,
}

impl Tools {
    fn chatload(&self, args: &[&str]) -> anyhow::Result<Figures> {
        let output = Command::new(&self.chatload)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run chatload")?;
        let text = String::from_utf8_lossy(&output.stdout);
        ensure!(output.status.success(), "chatload {args:?} failed: {text}");
        let figures = parse_result(&text)?;
        show(&format!("chatload {}", args[0]), &figures);
        Ok(figures)
    }

    /// Runs a harness wrk script; its RESULT line with the server's CPU for the run.
    fn wrk(
        &self,
        script: &str,
        env: &[(&str, String)],
        connections: u32,
        seconds: u64,
        base: &str,
        server: &Processes,
    ) -> anyhow::Result<Figures> {
        let before = server.cpu_seconds();
        let output = self
            .wrk_command(script, env, connections, seconds, base)
            .output()
            .context("cannot run wrk")?;
        let cpu = server.cpu_seconds() - before;
        let text = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "wrk {script} failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut figures = parse_result(&text)?;
        ensure!(
            figures.get("non2xx") == Some(&0.0) && figures.get("socket_errors") == Some(&0.0),
            "wrk {script} saw errors: {text}"
        );
        let requests = figures.get("requests").copied().unwrap_or(0.0).max(1.0);
        figures.insert("server_cpu_s".into(), cpu.server);
        figures.insert("cpu_ms_per_req".into(), cpu.server * 1000.0 / requests);
        figures.insert("db_cpu_ms_per_req".into(), cpu.database * 1000.0 / requests);
        figures.insert("rss_kib_now".into(), server.rss_kib()? as f64);
        show(script, &figures);
        Ok(figures)
    }

    fn wrk_command(
        &self,
        script: &str,
        env: &[(&str, String)],
        connections: u32,
        seconds: u64,
        base: &str,
    ) -> Command {
        let mut command = Command::new("wrk");
        command
            .arg(format!("-t{}", connections.min(2)))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{seconds}s"))
            .args(["--timeout", "10s", "-s"])
            .arg(self.harness.join(script))
            .arg(base)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }
}

/// Says on stderr what a step measured, so that a long run shows its figures as it goes.
fn show(step: &str, figures: &Figures) {
    let pairs: Vec<String> = figures
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    eprintln!("  {step}: {}", pairs.join(" "));
}

/// The `key=value` figures of the last `RESULT` line of `text`.
fn parse_result(text: &str) -> anyhow::Result<Figures> {
    let line = text
        .lines()
        .rev()
        .find(|line| line.contains("RESULT"))
        .with_context(|| format!("no RESULT line in: {text}"))?;
    Ok(line
        .split_whitespace()
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// CPU seconds, the server's and its database's.
struct Cpu {
    server: f64,
    database: f64,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            server: self.server - earlier.server,
            database: self.database - earlier.database,
        }
    }
}

/// The processes whose CPU and memory a step reads: the server, and PostgreSQL's.
struct Processes {
    server: u32,
    postmaster: Option<u32>,
}

impl Processes {
    fn cpu_seconds(&self) -> Cpu {
        let database = self.postmaster.map_or(0.0, |postmaster| {
            let mut total = process_cpu(postmaster);
            for child in children(postmaster) {
                total += process_cpu(child);
            }
            total
        });
        Cpu {
            server: process_cpu(self.server),
            database,
        }
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        Ok(memory_kib(self.server)?.0)
    }
}

/// A process's user + system CPU seconds from `/proc/PID/stat` (0 once it is gone).
fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which may hold spaces, so split after its `)`.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: `sysconf` reads a configuration value; it has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / per_second
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The configuration PlexiChat runs the benchmark with: its defaults, but with the limits
/// meant for people lifted as the peers' were (a benchmark sends 16 people's messages as
/// fast as it can, from one address, and opens thousands of WebSockets from it).
fn plexichat_config(database: Option<&str>) -> String {
    let mut config = String::from(
        "[server]\nmax_connections = 20000\nmax_streams = 20000\nmax_streams_per_client = 0\n\n\
         [plugins.accounts]\naccess_token_ttl_secs = 86400\nregistrations_per_address = 100000\n\n\
         [plugins.channels]\nmessages_per_second = 100000\nmessage_burst = 100000\n\n\
         [plugins.files]\nquota_bytes_per_user = 107374182400\n\n\
         [plugins.webhooks]\nallow_addresses = [\"127.0.0.1\"]\n\n",
    );
    if let Some(url) = database {
        config.push_str(&format!("[data]\ndatabase = \"{url}\"\n"));
    }
    config
}

fn measure_plexichat(
    tools: &Tools,
    binary: &Path,
    dir: &Path,
    engine: Engine,
) -> anyhow::Result<Column> {
    let plan = tools.plan;
    let work = dir.join(format!("plexichat-{}", engine.name().to_lowercase()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let cluster = match engine {
        Engine::Postgres => Some(Cluster::start_durable()?),
        Engine::Sqlite => None,
    };
    let database = cluster.as_ref().map(|cluster| cluster.url.clone());
    std::fs::write(
        work.join("plexichat.toml"),
        plexichat_config(database.as_deref()),
    )?;
    let mut column = Column {
        title: format!("PlexiChat + {}", engine.name()),
        ..Column::default()
    };
    let (server, first) = Server::start(binary, &work, true)?;
    drop(server);
    column.start_first = first.as_secs_f64();
    let (server, second) = Server::start(binary, &work, true)?;
    column.start_second = second.as_secs_f64();
    let processes = Processes {
        server: server.pid(),
        postmaster: cluster.as_ref().and_then(Cluster::postmaster_pid),
    };
    let base = format!("http://{}", server.addr);
    let bench = work.join("bench");
    tools.chatload(&[
        "setup",
        "--base",
        &base,
        "--users",
        &USERS.to_string(),
        "--out",
        &path_str(&bench)?,
    ])?;
    let state = bench.join("state.json");
    let room = std::fs::read_to_string(bench.join("room.txt"))?
        .trim()
        .to_string();
    let tokens = path_str(&bench.join("tokens.txt"))?;
    std::thread::sleep(Duration::from_millis(500));
    column.rss_idle = processes.rss_kib()?;

    let send_env = [
        ("ROOM_ID", room.clone()),
        ("TOKENS_FILE", tokens.clone()),
        ("SEND_METHOD", "POST".to_string()),
        ("SEND_PATH", "/api/v1/channels/{room}/messages".to_string()),
        (
            "SEND_BODY",
            "{\"body\":\"benchmark message {n} lorem ipsum dolor sit amet\"}".to_string(),
        ),
        ("IDEMPOTENCY_HEADER", "Idempotency-Key".to_string()),
    ];
    let history_env = [
        ("ROOM_ID", room.clone()),
        ("TOKENS_FILE", tokens.clone()),
        (
            "HISTORY_PATH",
            "/api/v1/channels/{room}/messages?limit={limit}".to_string(),
        ),
    ];
    let search_env = [
        ("TOKENS_FILE", tokens.clone()),
        ("SEARCH_METHOD", "GET".to_string()),
        (
            "SEARCH_PATH",
            "/api/v1/messages/search?q={term}&limit=10".to_string(),
        ),
    ];
    let upload_env = [
        ("TOKENS_FILE", tokens.clone()),
        ("UPLOAD_PATH", "/api/v1/files?name=bench.bin".to_string()),
    ];
    let steps = Steps {
        send: &send_env,
        history: &history_env,
        search: &search_env,
        upload: &upload_env,
    };
    run_steps(tools, &mut column, &base, &processes, &steps, || {
        tools.chatload(&[
            "latency",
            "--state",
            &path_str(&state)?,
            "--iters",
            "50",
            "--max-seconds",
            &plan.chat.seconds.max(5).to_string(),
        ])
    })?;

    eprintln!(
        "bench chat: {} messages to a webhook endpoint",
        plan.chat.webhook_messages
    );
    column.webhooks = Some(tools.chatload(&[
        "webhooks",
        "--state",
        &path_str(&state)?,
        "--messages",
        &plan.chat.webhook_messages.to_string(),
        "--senders",
        "16",
    ])?);

    eprintln!("bench chat: {} idle WebSockets", plan.chat.clients);
    column.fanout = Some(tools.chatload(&[
        "fanout",
        "--state",
        &path_str(&state)?,
        "--clients",
        &plan.chat.clients.to_string(),
        "--messages",
        "10",
        "--pid",
        &processes.server.to_string(),
    ])?);
    drop(server);

    eprintln!("bench chat: {} stored messages", plan.chat.messages);
    let url = database
        .unwrap_or_else(|| format!("sqlite://{}", work.join("data/plexichat.db").display()));
    let seeded = tools.chatload(&[
        "seed",
        "--database",
        &url,
        "--channel",
        &room,
        "--messages",
        &plan.chat.messages.to_string(),
    ])?;
    let (server, started) = Server::start(binary, &work, true)?;
    let base = format!("http://{}", server.addr);
    rewrite_base(&state, &base)?;
    // One word in one message of the million: what a search for something specific finds.
    tools.chatload(&[
        "post",
        "--state",
        &path_str(&state)?,
        "--body",
        "the quarterly zanzibar report",
    ])?;
    let processes = Processes {
        server: server.pid(),
        postmaster: processes.postmaster,
    };
    let middle = plan.chat.messages / 2;
    let probes: [(&'static str, String); 5] = [
        (
            "history, newest 20",
            "/api/v1/channels/{room}/messages?limit=20".to_string(),
        ),
        (
            "history, 20 from the middle",
            format!("/api/v1/channels/{{room}}/messages?limit=20&before={middle}"),
        ),
        (
            "search, one match",
            "/api/v1/messages/search?q=zanzibar&limit=10".to_string(),
        ),
        (
            "search, every message matches",
            "/api/v1/messages/search?q=lorem&limit=10".to_string(),
        ),
        (
            "search, prefix of every message",
            "/api/v1/messages/search?q=lor*&limit=10".to_string(),
        ),
    ];
    let mut stored = Stored {
        messages: plan.chat.messages,
        seed_seconds: seeded.get("seconds").copied().unwrap_or(f64::NAN),
        start_seconds: started.as_secs_f64(),
        ..Stored::default()
    };
    for (name, path) in probes {
        stored.probes.push((
            name,
            tools.chatload(&[
                "probe",
                "--state",
                &path_str(&state)?,
                "--path",
                &path,
                "--iters",
                "200",
            ])?,
        ));
    }
    stored.history = tools.wrk(
        "history.lua",
        &history_env,
        16,
        plan.chat.seconds,
        &base,
        &processes,
    )?;
    stored.search = tools.wrk(
        "search.lua",
        &search_env,
        16,
        plan.chat.seconds,
        &base,
        &processes,
    )?;
    column.stored = Some(stored);
    drop(server);
    drop(cluster);
    Ok(column)
}

/// The wrk environment of each step for one server.
struct Steps<'a> {
    send: &'a [(&'a str, String)],
    history: &'a [(&'a str, String)],
    search: &'a [(&'a str, String)],
    upload: &'a [(&'a str, String)],
}

/// The harness's steps, in its order, against a running server.
fn run_steps(
    tools: &Tools,
    column: &mut Column,
    base: &str,
    processes: &Processes,
    steps: &Steps<'_>,
    latency: impl Fn() -> anyhow::Result<Figures>,
) -> anyhow::Result<()> {
    let seconds = tools.plan.chat.seconds;
    eprintln!("bench chat: sends, history, search, uploads");
    tools.wrk("send.lua", steps.send, 16, seconds.min(5), base, processes)?;
    column.steps.insert(
        "send16",
        tools.wrk("send.lua", steps.send, 16, seconds, base, processes)?,
    );
    column.steps.insert(
        "send1",
        tools.wrk("send.lua", steps.send, 1, seconds, base, processes)?,
    );
    column.steps.insert(
        "history",
        tools.wrk("history.lua", steps.history, 16, seconds, base, processes)?,
    );
    column.steps.insert(
        "search",
        tools.wrk("search.lua", steps.search, 16, seconds, base, processes)?,
    );
    column.steps.insert(
        "upload",
        tools.wrk("upload.lua", steps.upload, 4, seconds, base, processes)?,
    );
    eprintln!("bench chat: send to delivery, idle and under load");
    column.steps.insert("idle", latency()?);
    // Under load: 8 other senders for as long as the latency run takes.
    let mut background = tools
        .wrk_command("send.lua", steps.send, 8, seconds.max(5) + 5, base)
        .spawn()
        .context("cannot run wrk")?;
    std::thread::sleep(Duration::from_secs(1));
    let loaded = latency();
    let output = wait_output(&mut background)?;
    let mut loaded = loaded?;
    if let Ok(background) = parse_result(&output) {
        loaded.insert(
            "background_rps".into(),
            background.get("rps").copied().unwrap_or(f64::NAN),
        );
    }
    column.steps.insert("loaded", loaded);
    let (rss, peak) = memory_kib(processes.server)?;
    column.rss_after = rss;
    column.rss_peak = peak;
    Ok(())
}

fn wait_output(child: &mut Child) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    if let Some(stdout) = child.stdout.as_mut() {
        stdout.read_to_string(&mut text)?;
    }
    child.wait()?;
    Ok(text)
}

/// Points `state.json` at a restarted server's address.
fn rewrite_base(state: &Path, base: &str) -> anyhow::Result<()> {
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state)?)?;
    value["base"] = serde_json::Value::String(base.to_string());
    std::fs::write(state, serde_json::to_string_pretty(&value)?)?;
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Installs Synapse from PyPI into a virtual environment under `dir` (once); its Python.
fn install_synapse(dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = dir.join("synapse-venv");
    let python = venv.join("bin/python");
    let installed = Command::new(&python)
        .args(["-c", "import synapse, psycopg2"])
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        eprintln!("bench chat: installing matrix-synapse from PyPI");
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("cannot run python3 -m venv")?;
        ensure!(
            status.success(),
            "python3 -m venv failed (apt-get install python3-venv)"
        );
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "matrix-synapse[postgres]"])
            .status()
            .context("cannot run pip")?;
        ensure!(
            status.success(),
            "pip install matrix-synapse[postgres] failed"
        );
    }
    Ok(python)
}

/// A running Synapse, stopped when dropped.
struct Synapse {
    child: Child,
}

impl Drop for Synapse {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM", Duration::from_secs(15));
    }
}

/// Starts Synapse with `config` and waits for the first 200 of the client API.
fn start_synapse(
    python: &Path,
    config: &Path,
    addr: SocketAddr,
) -> anyhow::Result<(Synapse, Duration)> {
    let started = Instant::now();
    let child = Command::new(python)
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start Synapse")?;
    let mut synapse = Synapse { child };
    let deadline = Instant::now() + Duration::from_secs(120);
    while get_status(addr, "/_matrix/client/versions") != Some(200) {
        if let Ok(Some(status)) = synapse.child.try_wait() {
            bail!(
                "Synapse exited with {status}; see its log under {}",
                config.display()
            );
        }
        ensure!(Instant::now() < deadline, "Synapse never answered");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((synapse, started.elapsed()))
}

fn measure_synapse(
    tools: &Tools,
    python: &Path,
    dir: &Path,
    engine: Engine,
) -> anyhow::Result<Column> {
    let plan = tools.plan;
    let peer = dir.join(format!("synapse-{}", engine.name().to_lowercase()));
    let _ = std::fs::remove_dir_all(&peer);
    std::fs::create_dir_all(peer.join("data"))?;
    std::fs::create_dir_all(peer.join("bench"))?;
    let peer_dir = path_str(&peer)?;
    let port = free_port()?;
    let cluster = match engine {
        Engine::Postgres => {
            let cluster = Cluster::start_durable()?;
            cluster.psql(&[
                "CREATE ROLE synapse LOGIN",
                "CREATE DATABASE synapse OWNER synapse ENCODING 'UTF8' LC_COLLATE='C' \
                 LC_CTYPE='C' TEMPLATE template0",
            ])?;
            Some(cluster)
        }
        Engine::Sqlite => None,
    };
    let template = match engine {
        Engine::Sqlite => "homeserver.yaml",
        Engine::Postgres => "homeserver-pg.yaml",
    };
    let mut yaml = std::fs::read_to_string(tools.harness.join(template))?
        .replace("PEER_DIR", &peer_dir)
        .replace("port: 8008", &format!("port: {port}"));
    if let Some(cluster) = &cluster {
        yaml = yaml.replace("port: 5433", &format!("port: {}", cluster.port()));
    }
    let config = peer.join("homeserver.yaml");
    std::fs::write(&config, yaml)?;
    std::fs::write(
        peer.join("data/localhost.log.config"),
        std::fs::read_to_string(tools.harness.join("localhost.log.config"))?
            .replace("PEER_DIR", &peer_dir),
    )?;
    let status = Command::new(python)
        .args(["-m", "synapse.app.homeserver", "--config-path"])
        .arg(&config)
        .arg("--generate-keys")
        .stdout(Stdio::null())
        .status()
        .context("cannot run Synapse")?;
    ensure!(status.success(), "Synapse --generate-keys failed");

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let base = format!("http://{addr}");
    let mut column = Column {
        title: format!("Synapse + {}", engine.name()),
        ..Column::default()
    };
    let (server, first) = start_synapse(python, &config, addr)?;
    drop(server);
    column.start_first = first.as_secs_f64();
    let (server, second) = start_synapse(python, &config, addr)?;
    column.start_second = second.as_secs_f64();
    let processes = Processes {
        server: server.child.id(),
        postmaster: cluster.as_ref().and_then(Cluster::postmaster_pid),
    };
    let output = Command::new(python)
        .arg(tools.harness.join("setup_users.py"))
        .args([&base, &USERS.to_string()])
        .env("PEER_DIR", &peer_dir)
        .output()
        .context("cannot run setup_users.py")?;
    ensure!(
        output.status.success(),
        "setup_users.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bench = peer.join("bench");
    let room = std::fs::read_to_string(bench.join("room.txt"))?
        .trim()
        .to_string();
    let tokens = path_str(&bench.join("tokens.txt"))?;
    std::thread::sleep(Duration::from_millis(500));
    column.rss_idle = processes.rss_kib()?;
    // The scripts' defaults are Matrix's paths and bodies.
    let send_env = [("ROOM_ID", room.clone()), ("TOKENS_FILE", tokens.clone())];
    let history_env = [("ROOM_ID", room), ("TOKENS_FILE", tokens.clone())];
    let tokens_env = [("TOKENS_FILE", tokens)];
    let steps = Steps {
        send: &send_env,
        history: &history_env,
        search: &tokens_env,
        upload: &tokens_env,
    };
    let sync_latency = tools.harness.join("sync_latency.py");
    run_steps(tools, &mut column, &base, &processes, &steps, || {
        let output = Command::new(python)
            .arg(&sync_latency)
            .args([
                "--iters",
                "50",
                "--max-seconds",
                &plan.chat.seconds.max(5).to_string(),
            ])
            .env("PEER_DIR", &peer_dir)
            .output()
            .context("cannot run sync_latency.py")?;
        let text = String::from_utf8_lossy(&output.stdout);
        ensure!(output.status.success(), "sync_latency.py failed: {text}");
        parse_result(&text)
    })?;
    drop(server);
    drop(cluster);
    Ok(column)
}

/// The report's section: the peers' table, then what only PlexiChat was measured on.
fn section(columns: &[Column], plan: Plan, command: &str) -> String {
    let mut text = format!(
        "{HEADING}\n\nWritten by `{command}`. The workload the chat peers were measured with \
         (`tests/chatload/harness/`: the harness's wrk scripts and Synapse configuration; \
         `chatload` does for PlexiChat what the harness's Python does for Matrix): {USERS} \
         people in one channel, on loopback, each server alone on the machine in turn, \
         PlexiChat with its default plugins and its people-facing limits lifted as the \
         peers' were (see `plexichat_config` in `xtask/src/chat_bench.rs`). Each wrk step \
         runs {} s. PostgreSQL is 15 with its default durability (fsync on), a fresh cluster \
         per server. Delivery is PlexiChat's WebSocket frame against Synapse's long-poll \
         `/sync` answer. CPU is the server process's user + system time over the step \
         divided by its requests; PostgreSQL's own processes' CPU is given apart.\n\n",
        plan.chat.seconds
    );
    let pairs: Vec<(&Column, Option<&Column>)> = columns
        .iter()
        .enumerate()
        .filter(|(_, column)| column.title.starts_with("PlexiChat"))
        .map(|(i, column)| {
            let peer = columns
                .get(i + 1)
                .filter(|peer| peer.title.starts_with("Synapse"));
            (column, peer)
        })
        .collect();
    text.push_str("| figure |");
    for (ours, peer) in &pairs {
        text.push_str(&format!(" {} |", ours.title));
        if let Some(peer) = peer {
            text.push_str(&format!(" {} | PlexiChat's advantage |", peer.title));
        }
    }
    text.push_str(" Conduit + SQLite (harness log) |\n|---|");
    for (_, peer) in &pairs {
        text.push_str(if peer.is_some() {
            "---|---|---|"
        } else {
            "---|"
        });
    }
    text.push_str("---|\n");
    for row in ROWS {
        text.push_str(&format!("| {} |", row.label));
        for (ours, peer) in &pairs {
            let mine = (row.value)(ours);
            text.push_str(&format!(" {} |", row.format(mine)));
            if let Some(peer) = peer {
                let theirs = (row.value)(peer);
                let advantage = if row.higher_is_better {
                    mine / theirs
                } else {
                    theirs / mine
                };
                text.push_str(&format!(
                    " {} | {} |",
                    row.format(theirs),
                    if advantage.is_finite() {
                        format!("**{advantage:.1}×**")
                    } else {
                        "—".to_string()
                    }
                ));
            }
        }
        text.push_str(&format!(" {} |\n", row.conduit));
    }
    text.push_str(
        "\nAdvantage is PlexiChat's figure over Synapse's where more is better, Synapse's over \
         PlexiChat's where less is; above 1 PlexiChat is ahead. The Conduit column is quoted \
         from the harness's logs (measured on a machine like this one, not in this run).\n\n",
    );
    for (ours, _) in &pairs {
        if let Some(fanout) = &ours.fanout {
            let get = |key: &str| fanout.get(key).copied().unwrap_or(f64::NAN);
            text.push_str(&format!(
                "**{} idle WebSockets, {}.** Connected in {:.1} s; the server's resident \
                 memory went from {:.0} MB to {:.0} MB ({:.1} KiB per connection). Ten \
                 messages, each timed from just before its send to its frame on every \
                 connection: p50 {:.1} ms, p99 {:.1} ms, slowest {:.1} ms; the last \
                 connection had each message after {:.1} ms (median of the ten); {} of {} \
                 frames arrived.\n\n",
                get("clients"),
                ours.title,
                get("connect_s"),
                get("rss_before_kib") / 1024.0,
                get("rss_connected_kib") / 1024.0,
                get("kib_per_client"),
                get("p50_ms"),
                get("p99_ms"),
                get("max_ms"),
                get("to_all_p50_ms"),
                get("delivered"),
                get("expected"),
            ));
        }
        if let Some(webhooks) = &ours.webhooks {
            let get = |key: &str| webhooks.get(key).copied().unwrap_or(f64::NAN);
            let without = step(ours, "send16", "rps");
            text.push_str(&format!(
                "**Webhooks, {}.** {} messages posted by 16 people at once while one endpoint \
                 (a receiver on loopback that answers 200 at once) takes every chat event, each \
                 signed and recorded with its attempt: posted at {} msg/s ({:.2}× the send \
                 step's {} msg/s without an endpoint, which runs on wrk for a fixed time), \
                 delivered at {} per second ({:.2}× the posting rate: the deliveries keep up \
                 when it is near 1). From the event's time to its delivery: p50 {:.1} ms, \
                 p99 {:.1} ms, slowest {:.1} ms.\n\n",
                ours.title,
                get("messages"),
                group(get("posted_per_s")),
                get("posted_per_s") / without,
                group(without),
                group(get("delivered_per_s")),
                get("delivered_per_s") / get("posted_per_s"),
                get("delay_p50_ms"),
                get("delay_p99_ms"),
                get("delay_max_ms"),
            ));
        }
        if let Some(stored) = &ours.stored {
            text.push_str(&format!(
                "**One channel of {} messages, {}** (the benchmark's own messages copied \
                 with their search terms, {:.0} s; restart to first 200 {:.2} s). One \
                 request at a time, 200 each:\n\n| request | p50 | p99 | answer |\n|---|---|---|---|\n",
                group(stored.messages as f64),
                ours.title,
                stored.seed_seconds,
                stored.start_seconds,
            ));
            for (name, figures) in &stored.probes {
                let get = |key: &str| figures.get(key).copied().unwrap_or(f64::NAN);
                text.push_str(&format!(
                    "| {name} | {:.2} ms | {:.2} ms | {} bytes |\n",
                    get("p50_ms"),
                    get("p99_ms"),
                    get("bytes")
                ));
            }
            let rate = |figures: &Figures| figures.get("rps").copied().unwrap_or(f64::NAN);
            text.push_str(&format!(
                "\nUnder wrk at 16 connections: history (newest 20) {} req/s, search for a \
                 word every message has {} req/s.\n\n",
                group(rate(&stored.history)),
                group(rate(&stored.search)),
            ));
        }
    }
    text
}

/// One row of the peers' table.
struct Row {
    label: &'static str,
    value: fn(&Column) -> f64,
    higher_is_better: bool,
    decimals: usize,
    /// The harness log's Conduit figure, quoted.
    conduit: &'static str,
}

impl Row {
    fn format(&self, value: f64) -> String {
        if !value.is_finite() {
            return "—".to_string();
        }
        if self.decimals == 0 {
            group(value)
        } else {
            format!("{value:.*}", self.decimals)
        }
    }
}

fn step(column: &Column, name: &str, key: &str) -> f64 {
    column
        .steps
        .get(name)
        .and_then(|figures| figures.get(key))
        .copied()
        .unwrap_or(f64::NAN)
}

const ROWS: &[Row] = &[
    Row {
        label: "send, 16 concurrent senders: msg/s",
        value: |c| step(c, "send16", "rps"),
        higher_is_better: true,
        decimals: 0,
        conduit: "389–644",
    },
    Row {
        label: "send, 16 senders: p50 ms",
        value: |c| step(c, "send16", "p50_ms"),
        higher_is_better: false,
        decimals: 1,
        conduit: "24–41",
    },
    Row {
        label: "server CPU per message, ms",
        value: |c| step(c, "send16", "cpu_ms_per_req"),
        higher_is_better: false,
        decimals: 2,
        conduit: "1.6–2.3",
    },
    Row {
        label: "PostgreSQL's CPU per message, ms",
        value: |c| step(c, "send16", "db_cpu_ms_per_req"),
        higher_is_better: false,
        decimals: 2,
        conduit: "—",
    },
    Row {
        label: "send, 1 sender: msg/s",
        value: |c| step(c, "send1", "rps"),
        higher_is_better: true,
        decimals: 0,
        conduit: "170",
    },
    Row {
        label: "history (newest 20), 16 connections: req/s",
        value: |c| step(c, "history", "rps"),
        higher_is_better: true,
        decimals: 0,
        conduit: "1,843–2,053",
    },
    Row {
        label: "full-text search, 16 connections: req/s",
        value: |c| step(c, "search", "rps"),
        higher_is_better: true,
        decimals: 0,
        conduit: "4,508–5,005",
    },
    Row {
        label: "64 KiB upload, 4 connections: req/s",
        value: |c| step(c, "upload", "rps"),
        higher_is_better: true,
        decimals: 0,
        conduit: "98",
    },
    Row {
        label: "send → other's delivery, idle: p50 ms",
        value: |c| step(c, "idle", "p50_ms"),
        higher_is_better: false,
        decimals: 1,
        conduit: "13.4",
    },
    Row {
        label: "send → other's delivery, under load: p50 ms",
        value: |c| step(c, "loaded", "p50_ms"),
        higher_is_better: false,
        decimals: 1,
        conduit: "38–40",
    },
    Row {
        label: "send → other's delivery, under load: p99 ms",
        value: |c| step(c, "loaded", "p99_ms"),
        higher_is_better: false,
        decimals: 1,
        conduit: "51",
    },
    Row {
        label: "start to first 200 (empty database), s",
        value: |c| c.start_first,
        higher_is_better: false,
        decimals: 3,
        conduit: "0.050",
    },
    Row {
        label: "start to first 200 (again), s",
        value: |c| c.start_second,
        higher_is_better: false,
        decimals: 3,
        conduit: "0.047",
    },
    Row {
        label: "RSS idle, MB",
        value: |c| c.rss_idle as f64 / 1024.0,
        higher_is_better: false,
        decimals: 1,
        conduit: "67",
    },
    Row {
        label: "RSS after the load, MB",
        value: |c| c.rss_after as f64 / 1024.0,
        higher_is_better: false,
        decimals: 1,
        conduit: "81",
    },
    Row {
        label: "RSS peak, MB",
        value: |c| c.rss_peak as f64 / 1024.0,
        higher_is_better: false,
        decimals: 1,
        conduit: "—",
    },
];

/// `1234567.8` as `1,234,568`.
fn group(value: f64) -> String {
    if !value.is_finite() {
        return "—".to_string();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_and_grouping() {
        let figures = parse_result("noise\nRESULT rps=99.4 p50_ms=152.76 non2xx=0\n").unwrap();
        assert_eq!(figures["rps"], 99.4);
        assert_eq!(figures["p50_ms"], 152.76);
        assert_eq!(figures["non2xx"], 0.0);
        assert!(parse_result("no result here").is_err());
        assert_eq!(group(1234567.8), "1,234,568");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(f64::NAN), "—");
    }
}
