//! A throwaway PostgreSQL cluster for the test suite: `initdb` in a temporary folder, a
//! server on a free loopback port with trust authentication and no fsync, stopped and
//! deleted when dropped. Debian's `postgresql` package provides the binaries (there is no
//! systemd here to start its own cluster); as root they run as the `postgres` user, since
//! PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The variable the tests read the server's URL from.
pub const URL_VAR: &str = "PLEXICHAT_TEST_POSTGRES";

/// A running cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    port: u16,
    /// `postgres://plexichat@127.0.0.1:<port>/postgres`.
    pub url: String,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, or `initdb` on the PATH.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

impl Cluster {
    /// The server [`URL_VAR`] names if it is set (an operator's own server), else a new
    /// throwaway cluster; returns the cluster to keep alive (if one was started) and the URL.
    pub fn from_env_or_start() -> anyhow::Result<(Option<Cluster>, String)> {
        if let Ok(url) = std::env::var(URL_VAR) {
            return Ok((None, url));
        }
        let cluster = Cluster::start()?;
        let url = cluster.url.clone();
        Ok((Some(cluster), url))
    }

    /// Starts a cluster for tests (no fsync: nothing in it needs to survive a crash), or
    /// explains in one line how to make that possible.
    pub fn start() -> anyhow::Result<Cluster> {
        Cluster::start_with(false)
    }

    /// Starts a cluster with PostgreSQL's default durability (fsync, synchronous commit), as
    /// a production server runs: what a benchmark measures against.
    pub fn start_durable() -> anyhow::Result<Cluster> {
        Cluster::start_with(true)
    }

    fn start_with(durable: bool) -> anyhow::Result<Cluster> {
        let bin = bin_dir().context(
            "PostgreSQL is not installed; the storage tests need it: run `apt-get install postgresql` (or set PLEXICHAT_TEST_POSTGRES to a server URL)",
        )?;
        // SAFETY: `geteuid` takes no arguments and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        // One process may run several clusters, one after the other or at once.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "plexichat-pg-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .context("cannot run chown")?;
            if !status.success() {
                bail!(
                    "cannot hand {} to the `postgres` user (does it exist? `apt-get install postgresql` creates it)",
                    dir.display()
                );
            }
        }
        let port = free_port()?;
        let cluster = Cluster {
            bin,
            dir,
            as_postgres,
            port,
            url: format!("postgres://plexichat@127.0.0.1:{port}/postgres"),
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "plexichat".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        let speed = if durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300{speed}",
            cluster.dir.display()
        );
        let log = cluster.dir.join("server.log");
        cluster
            .run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-o".as_ref(),
                    options.as_ref(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "start".as_ref(),
                ],
            )
            .with_context(|| {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                format!("PostgreSQL did not start; its log:\n{tail}")
            })?;
        Ok(cluster)
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
        let binary = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        let output = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        if !output.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's main process, whose children serve the connections.
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Runs each SQL statement with `psql` as the cluster's superuser.
    pub fn psql(&self, statements: &[&str]) -> anyhow::Result<()> {
        for statement in statements {
            self.run(
                "psql",
                &[
                    self.url.as_ref(),
                    "-v".as_ref(),
                    "ON_ERROR_STOP=1".as_ref(),
                    "-c".as_ref(),
                    statement.as_ref(),
                ],
            )?;
        }
        Ok(())
    }

    /// The folder the cluster lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}
