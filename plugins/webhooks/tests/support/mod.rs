//! A webhook receiver for tests, in Python, that verifies every delivery with PyPI's
//! `standardwebhooks` (the Standard Webhooks reference library), installed by this module
//! into `target/python-webhooks/` when missing. Python 3 with `venv` is required (`.ci/run`
//! installs it); without it the tests fail, saying so.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use plexichat::serde_json::{Value, json};

/// The library and its version; changing it reinstalls the venv.
const TOOLS: &[&str] = &["standardwebhooks==1.3.0"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the workspace root")
        .to_path_buf()
}

/// `target/python-webhooks/bin/python`, with [`TOOLS`] installed.
pub fn python() -> PathBuf {
    static ONCE: Mutex<()> = Mutex::new(());
    let _once = ONCE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = workspace_root().join("target/python-webhooks");
    let marker = venv.join("installed.txt");
    let wanted = TOOLS.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return venv.join("bin/python");
    }
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap_or_else(|error| panic!("cannot run python3 ({error}): these tests need Python 3"));
    assert!(
        status.success(),
        "`python3 -m venv` failed: install Python's venv module (`apt-get install python3-venv`)"
    );
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(TOOLS)
        .status()
        .expect("pip runs");
    assert!(status.success(), "`pip install {}` failed", TOOLS.join(" "));
    std::fs::write(&marker, wanted).unwrap();
    venv.join("bin/python")
}

/// A running receiver, stopped when dropped.
pub struct Receiver {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Receiver {
    pub fn start() -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find_map(|dir| {
                let candidate = dir.join("plugins/webhooks/tests/support/receiver.py");
                candidate.exists().then_some(candidate)
            })
            .expect("receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port=")
            .unwrap_or_else(|| panic!("the receiver said {line:?}"))
            .parse()
            .unwrap();
        Receiver { child, port }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn control(&self, path: &str, body: Value) {
        let (status, _) = self.http("POST", path, &body.to_string()).await;
        assert_eq!(status, 204);
    }

    /// One HTTP/1.1 request to the receiver, with `Connection: close`.
    async fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Verifies `path`'s deliveries with each of `secrets`.
    pub async fn secrets(&self, path: &str, secrets: &[&str]) {
        self.control("/_secrets", json!({ path: secrets })).await;
    }

    /// Answers `path`'s deliveries with `steps` in turn (`{"status", "retry_after", "delay"}`).
    pub async fn script(&self, path: &str, steps: Value) {
        self.control("/_script", json!({ path: steps })).await;
    }

    /// What it received, oldest first.
    pub async fn log(&self) -> Vec<Value> {
        let (status, body) = self.http("GET", "/_log", "").await;
        assert_eq!(status, 200, "{body}");
        plexichat::serde_json::from_str(&body).unwrap()
    }

    /// What it received on `path`, waiting (up to `seconds`) until there are at least `count`.
    pub async fn wait_for(&self, path: &str, count: usize, seconds: u64) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let got: Vec<Value> = self
                .log()
                .await
                .into_iter()
                .filter(|entry| entry["path"] == path)
                .collect();
            if got.len() >= count || std::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
