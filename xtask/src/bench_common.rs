//! What the benchmarks share: the plan of a run, samples with their median and spread, a
//! server process started and timed to ready, and `wrk` load. `bench`, `assets_bench` and
//! `scale` use it; it uses none of them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

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
    /// The chat benchmark's sizes.
    pub chat: ChatPlan,
}

/// How much of the chat benchmark to run.
#[derive(Debug, Clone, Copy)]
pub struct ChatPlan {
    /// Seconds of each wrk step.
    pub seconds: u64,
    /// Idle WebSockets the fan-out opens.
    pub clients: usize,
    /// Messages in the channel history and search are timed on.
    pub messages: u64,
    /// Whether PostgreSQL is measured besides SQLite.
    pub postgres: bool,
    /// Whether Synapse runs as the peer.
    pub synapse: bool,
    /// Messages posted with a webhook endpoint taking every chat event.
    pub webhook_messages: usize,
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
        chat: ChatPlan {
            seconds: 2,
            clients: 200,
            messages: 20_000,
            postgres: false,
            synapse: false,
            webhook_messages: 200,
        },
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
        chat: ChatPlan {
            seconds: 15,
            clients: 10_000,
            messages: 1_000_000,
            postgres: true,
            synapse: true,
            webhook_messages: 10_000,
        },
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

/// The client connection counts the HTTP benchmark runs at: a moderate and a heavy load.
pub(crate) const CONNECTIONS: [u32; 2] = [64, 256];

/// `duration` in milliseconds, the unit every timing of the report is in.
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

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
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
        Ok(memory_kib(self.child.id())?.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child, "-INT", Duration::from_secs(10));
    }
}

/// Sends `signal` (`-INT`, `-TERM`) to `child` and waits up to `grace` for it to exit, then
/// kills it.
pub(crate) fn stop(child: &mut Child, signal: &str, grace: Duration) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A process's `VmRSS` and `VmHWM` (its peak), in KiB.
pub(crate) fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("no process {pid}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} for process {pid}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
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

/// Whether `wrk` runs here; says so on stderr when it does not.
pub(crate) fn wrk_installed() -> bool {
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
pub(crate) fn wrk(url: &str, seconds: u64, connections: u32) -> anyhow::Result<f64> {
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
}
