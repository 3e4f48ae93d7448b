//! `cargo xtask bench assets`: serving one embedded 50 KiB asset against nginx serving the
//! same file from disk with `sendfile`, same run, same `wrk` settings; and the time to the
//! first byte of the shell's `/`, cold (the first request a fresh server answers) and warm.
//!
//! The asset lives in a plugin crate generated outside the repository and built in with
//! `--with`, so that the repository carries no benchmark payload.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench_common::{Plan, Samples, Server, get_status, ms, wrk_rate};
use crate::build::{self, Selection};
use crate::with::{External, Source};
use crate::workspace;

/// The heading of this benchmark's section of the report.
pub const HEADING: &str = "## Static assets";
/// The asset's size: 50 KiB.
const SIZE: usize = 50 * 1024;
/// The plugin that carries it.
const PLUGIN: &str = "bench_assets";
/// wrk's connections, as the HTTP benchmark's first load.
const CONNECTIONS: u32 = 64;

/// 50 KiB of deterministic, incompressible bytes (xorshift), identical on every run.
fn payload() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Writes the plugin crate with the asset in its `ui/static/`.
fn plugin_crate(dir: &Path, payload: &[u8]) -> anyhow::Result<PathBuf> {
    let krate = dir.join(PLUGIN);
    let _ = std::fs::remove_dir_all(&krate);
    std::fs::create_dir_all(krate.join("src"))?;
    std::fs::create_dir_all(krate.join("ui/static"))?;
    let core = workspace::root().join("core");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{PLUGIN}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nplexichat = {{ path = {:?} }}\n",
            core.display().to_string()
        ),
    )?;
    std::fs::write(
        krate.join("src/lib.rs"),
        "//! The asset benchmark's payload: one 50 KiB file in `ui/static/`.\n\n\
         use plexichat::prelude::*;\n\n\
         /// Carries the asset benchmark's file.\n\
         #[plugin(author = \"PlexiChat benchmarks\")]\n\
         #[derive(Default)]\n\
         pub struct BenchAssets;\n",
    )?;
    std::fs::write(krate.join("ui/static/asset.bin"), payload)?;
    Ok(krate)
}

/// nginx, serving `root` on `addr` with `sendfile`, stopped when dropped.
struct Nginx(Child);

impl Nginx {
    fn start(prefix: &Path, root: &Path, addr: SocketAddr) -> anyhow::Result<Nginx> {
        let config = prefix.join("nginx.conf");
        std::fs::write(
            &config,
            format!(
                "daemon off;\nworker_processes auto;\npid {prefix}/nginx.pid;\n\
                 error_log {prefix}/error.log warn;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
                 \x20 client_body_temp_path {prefix}/tmp;\n  proxy_temp_path {prefix}/tmp;\n\
                 \x20 fastcgi_temp_path {prefix}/tmp;\n  uwsgi_temp_path {prefix}/tmp;\n  scgi_temp_path {prefix}/tmp;\n\
                 \x20 server {{\n    listen {addr};\n    root {root};\n  }}\n}}\n",
                prefix = prefix.display(),
                root = root.display(),
            ),
        )?;
        std::fs::create_dir_all(prefix.join("tmp"))?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start nginx")?;
        let nginx = Nginx(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while get_status(addr, "/asset.bin") != Some(200) {
            anyhow::ensure!(Instant::now() < deadline, "nginx never served /asset.bin");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: a graceful stop.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free now.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Milliseconds from connecting to the first byte of the answer to `GET path`, and the
/// status; the connection is fresh.
fn time_to_first_byte(addr: SocketAddr, path: &str) -> anyhow::Result<(f64, u16)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    )?;
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    let elapsed = ms(started.elapsed());
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let head = String::from_utf8_lossy(&rest);
    let status = head.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((elapsed, status))
}

/// What the benchmark measured.
struct Measured {
    nginx: Samples,
    plexichat: Samples,
    cold: Samples,
    warm: Samples,
}

/// Builds the binary, measures, and returns the report's section.
pub fn run(plan: Plan, scratch: &Path, command: &str) -> anyhow::Result<String> {
    if Command::new("nginx").arg("-v").output().is_err() {
        bail!(
            "nginx is not installed; the asset benchmark compares with it: run `apt-get install nginx-light`"
        );
    }
    let dir = scratch.join("assets");
    std::fs::create_dir_all(&dir)?;
    let payload = payload();
    let krate = plugin_crate(&dir, &payload)?;
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("asset.bin"), &payload)?;

    eprintln!("bench: building the app with a 50 KiB asset");
    let binary = build::build_app(&build::Options {
        selection: Selection::Default,
        release: plan.release,
        dynamic: false,
        out: workspace::root().join("target/bench/plexichat-assets"),
        with: vec![External {
            name: PLUGIN.to_string(),
            source: Source::Path(krate),
        }],
    })?;

    let asset_path = format!("/plugins/{PLUGIN}/static/asset.bin");
    let mut nginx_rates = Vec::new();
    let mut our_rates = Vec::new();
    for round in 0..plan.load_rounds {
        for ours_first in [round.is_multiple_of(2), !round.is_multiple_of(2)] {
            if ours_first {
                let (server, _) = Server::start(&binary, &dir, true)?;
                let (status, bytes) = fetch_len(server.addr, &asset_path)?;
                anyhow::ensure!(
                    status == 200 && bytes == SIZE,
                    "{asset_path}: {status}, {bytes} bytes"
                );
                our_rates.push(wrk_rate(
                    server.addr,
                    &asset_path,
                    plan.load_seconds,
                    CONNECTIONS,
                )?);
            } else {
                let addr = free_port()?;
                let nginx = Nginx::start(&dir, &www, addr)?;
                nginx_rates.push(wrk_rate(
                    addr,
                    "/asset.bin",
                    plan.load_seconds,
                    CONNECTIONS,
                )?);
                drop(nginx);
            }
        }
    }

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..plan.start_rounds {
        let (server, _) = Server::start(&binary, &dir, true)?;
        let (first, status) = time_to_first_byte(server.addr, "/")?;
        anyhow::ensure!(status == 200, "GET / answered {status}");
        cold.push(first);
        warm.push(time_to_first_byte(server.addr, "/")?.0);
    }
    let measured = Measured {
        nginx: Samples(nginx_rates),
        plexichat: Samples(our_rates),
        cold: Samples(cold),
        warm: Samples(warm),
    };
    Ok(section(&measured, plan, command))
}

/// The status and body length of `GET path`.
fn fetch_len(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, usize)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("no end of head")?;
    let status = String::from_utf8_lossy(&answer[9..12]).parse().unwrap_or(0);
    Ok((status, answer.len() - split - 4))
}

fn section(measured: &Measured, plan: Plan, command: &str) -> String {
    let (nginx_min, nginx_max) = measured.nginx.spread();
    let (our_min, our_max) = measured.plexichat.spread();
    let ratio = measured.plexichat.median() / measured.nginx.median();
    let (cold_min, cold_max) = measured.cold.spread();
    let (warm_min, warm_max) = measured.warm.spread();
    format!(
        "{HEADING}\n\nWritten by `{command}`. One 50 KiB file (incompressible bytes): plexichat \
         (default plugins plus a generated plugin carrying the file in `ui/static/`, built in \
         with `--with`) serves it from the binary at `/plugins/{PLUGIN}/static/asset.bin`; \
         Debian's nginx serves the same file from disk with `sendfile on`, `access_log off`, \
         `worker_processes auto`. `wrk -t1 -c{CONNECTIONS} -d{seconds}s` on loopback, \
         {rounds} alternating rounds, each server fresh; no `Accept-Encoding`, so both send \
         the bytes as they are.\n\n\
         | server | requests/s (median, spread) | ratio to nginx |\n|---|---|---|\n\
         | nginx, `sendfile` | {:.0} ({nginx_min:.0}–{nginx_max:.0}) | 1.00 |\n\
         | plexichat, embedded | {:.0} ({our_min:.0}–{our_max:.0}) | **{ratio:.2}** |\n\n\
         Target: a ratio of at least 0.7.\n\n\
         Time to the first byte of `/` (the shell's page, rendered per request) on a fresh \
         connection, over {starts} fresh servers: cold (the first request the server answers) \
         {:.2} ms ({cold_min:.2}–{cold_max:.2}), warm (the next one) {:.2} ms \
         ({warm_min:.2}–{warm_max:.2}).\n\n",
        measured.nginx.median(),
        measured.plexichat.median(),
        measured.cold.median(),
        measured.warm.median(),
        seconds = plan.load_seconds,
        rounds = plan.load_rounds,
        starts = plan.start_rounds,
    )
}
