//! The built binary: the enabled features decide exactly which plugins it contains, and it is
//! statically linked. Builds through `cargo xtask build-app`, as an operator would.

use std::path::{Path, PathBuf};
use std::process::Command;

use plexichat_tests::workspace_root;
use serde_json::{Value, json};

/// Builds the app with `args` into a scratch path under `target/` and returns it.
///
/// Builds run one at a time: cargo writes every feature set to the same output file and the
/// xtask copies it after cargo has released its lock, so two concurrent builds with
/// different features could each copy the other's binary.
pub(crate) fn build_app(name: &str, args: &[&str]) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let out = workspace_root()
        .join("target/feature-sets")
        .join(name)
        .join("plexichat");
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--package", "xtask", "--", "build-app"])
        .args(args)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo xtask build-app {args:?} failed");
    out
}

/// Runs `binary args…` and returns its output, failing the test with its stderr if it fails.
fn run_ok(binary: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let output = Command::new(binary)
        .args(args)
        .output()
        .expect("binary runs");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn listed_plugins(binary: &Path) -> Vec<String> {
    listed(binary)
        .iter()
        .map(|plugin| plugin["name"].as_str().unwrap().to_string())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The plugins of the workspace this suite tests, with their plugin dependencies: read from
/// `plugins/`, so that an author's new plugin is expected, not a surprise.
fn workspace_plugins() -> Vec<xtask::workspace::PluginCrate> {
    xtask::workspace::plugins(&workspace_root()).expect("plugins/ readable")
}

fn listed(binary: &Path) -> Vec<Value> {
    let output = run_ok(
        binary,
        &["plugins".as_ref(), "list".as_ref(), "--json".as_ref()],
    );
    serde_json::from_slice(&output.stdout).expect("JSON list")
}

#[test]
fn features_decide_exactly_what_is_in_the_static_binary() {
    let one = build_app("one", &["--plugins", "my_awesome_plugin"]);
    let all = build_app("all", &["--all"]);

    assert_eq!(listed_plugins(&one), ["my_awesome_plugin"]);
    // `--all` is every plugin under plugins/, in start order: each after its dependencies.
    let listed = listed_plugins(&all);
    let mut names = listed.clone();
    names.sort();
    let workspace = workspace_plugins();
    let expected: Vec<&str> = workspace
        .iter()
        .map(|plugin| plugin.name.as_str())
        .collect();
    assert_eq!(names, expected);
    let position = |name: &str| listed.iter().position(|listed| listed == name).unwrap();
    for plugin in &workspace {
        for dependency in &plugin.dependencies {
            assert!(
                position(dependency) < position(&plugin.name),
                "{} starts before its dependency {dependency}: {listed:?}",
                plugin.name
            );
        }
    }

    // awesome_audit's description comes from its doc comment and exists nowhere else: if
    // any of its code were linked in, the string would be.
    let marker = "Audits awesome actions";
    assert!(contains(&std::fs::read(&all).unwrap(), marker));
    assert!(!contains(&std::fs::read(&one).unwrap(), marker));

    for binary in [&one, &all] {
        let linkage = xtask::elf::linkage(binary).unwrap();
        assert!(linkage.is_static(), "{}: {linkage:?}", binary.display());
    }
}

/// `cargo xtask list-plugins` reads descriptions and types from source; the binary gets them
/// from `#[plugin]`'s expansion. One rule, checked here for every workspace plugin.
#[test]
fn the_workspace_listing_describes_plugins_as_the_binary_does() {
    let all = build_app("all", &["--all"]);
    let root = workspace_root();
    let from_binary: Vec<(String, String, String)> = listed(&all)
        .iter()
        .map(|plugin| {
            let text = |key: &str| plugin[key].as_str().unwrap().to_string();
            (text("name"), text("type"), text("description"))
        })
        .collect();
    for plugin in workspace_plugins() {
        let summary = xtask::workspace::summary(&root, &plugin.name).unwrap();
        let binary = from_binary
            .iter()
            .find(|(name, ..)| *name == plugin.name)
            .unwrap_or_else(|| panic!("{} not in the --all binary", plugin.name));
        assert_eq!(
            (&binary.1, &binary.2),
            (&summary.kind, &summary.description),
            "{}: the binary's type and description, then list-plugins'",
            plugin.name
        );
    }
}

#[test]
fn enabling_a_plugin_enables_its_dependencies() {
    let audit = build_app("audit", &["--plugins", "awesome_audit"]);
    assert_eq!(
        listed_plugins(&audit),
        ["my_awesome_plugin", "awesome_audit"]
    );

    let output = Command::new(&audit)
        .args(["plugins", "info", "nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "unknown plugin `nope`; compiled-in plugins: my_awesome_plugin, awesome_audit"
        ),
        "{stderr}"
    );
}

/// Runs `cargo xtask build-app ARGS…`, which must fail; returns what it said.
fn build_app_refuses(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--package", "xtask", "--", "build-app"])
        .args(args)
        .output()
        .unwrap();
    assert!(!output.status.success(), "build-app {args:?} was accepted");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn unknown_plugins_are_refused_by_the_xtask() {
    let stderr = build_app_refuses(&["--plugins", "nope"]);
    assert!(
        stderr.contains("unknown plugin `nope` in --plugins"),
        "{stderr}"
    );
}

/// A server process that is killed when the test ends, even by a failed assertion, so a
/// failing test cannot leave it running (and holding the test's output pipe open).
pub(crate) struct Server(pub(crate) std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) type Log = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// Starts `binary serve --bind 127.0.0.1:0 <args>` in `dir` and returns the server, its
/// address (read from the "serving" log line) and the rest of its log.
fn spawn_server(binary: &Path, dir: &Path, args: &[&str]) -> (Server, std::net::SocketAddr, Log) {
    let mut command = Command::new(binary);
    command.args(["serve", "--bind", "127.0.0.1:0"]).args(args);
    spawn_command(command, dir)
}

/// The binary with every workspace plugin, serving on loopback with the admin token `token`
/// in a fresh folder named after `test`: the binary, the server, its address, and a thread
/// that keeps reading its log (so it never blocks on a full pipe) and returns it once the
/// server ends.
pub(crate) fn serve_all_plugins(
    test: &str,
    token: &str,
) -> (
    PathBuf,
    Server,
    std::net::SocketAddr,
    std::thread::JoinHandle<Vec<String>>,
) {
    let (binary, _, server, addr, log) = serve_all_plugins_configured(test, token, "");
    (binary, server, addr, log)
}

/// Like [`serve_all_plugins`], with `config` (unless empty) as the folder's `plexichat.toml`;
/// answers the folder too.
#[allow(clippy::type_complexity)]
pub(crate) fn serve_all_plugins_configured(
    test: &str,
    token: &str,
    config: &str,
) -> (
    PathBuf,
    PathBuf,
    Server,
    std::net::SocketAddr,
    std::thread::JoinHandle<Vec<String>>,
) {
    let binary = build_app("all", &["--all"]);
    let dir = plexichat_tests::scratch(test);
    // No file at all without one: an empty plexichat.toml is refused on reload.
    if !config.is_empty() {
        std::fs::write(dir.join("plexichat.toml"), config).unwrap();
    }
    let mut command = Command::new(&binary);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("PLEXICHAT_ADMIN_TOKEN", token);
    let (server, addr, log) = spawn_command(command, &dir);
    let log = std::thread::spawn(move || log.map_while(Result::ok).collect());
    (binary, dir, server, addr, log)
}

/// Starts `command` (a `plexichat serve`) in `dir` like [`spawn_server`].
pub(crate) fn spawn_command(
    mut command: Command,
    dir: &Path,
) -> (Server, std::net::SocketAddr, Log) {
    use std::io::BufRead;
    let mut child = command
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server printed no `serving` line before exiting")
            .unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.trim().parse().expect("socket address");
        }
    };
    (Server(child), addr, lines)
}

fn signal(server: &Server, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_binary_serves_and_stops_gracefully_on_sigterm() {
    // A fixed set, not `--all`: an author's plugin in plugins/ must not change what this
    // test sees.
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let (mut child, addr, lines) = spawn_server(&binary, &plexichat_tests::scratch("sigterm"), &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (status, body) = plexichat_tests::request(addr, "POST", "/api/v1/awesome/action").await;
        assert_eq!((status, &body["success"]), (200, &Value::Bool(true)));
        let (status, body) = plexichat_tests::request(addr, "GET", "/api/v1/plugins").await;
        assert_eq!(status, 200);
        assert_eq!(body["plugins"].as_array().unwrap().len(), 2);
    });
    signal(&child, "TERM");
    let status = child.0.wait().unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(status.success(), "exit {status}; stderr: {rest:#?}");
    assert!(
        rest.iter().any(|line| line.contains("SIGTERM received")),
        "{rest:#?}"
    );
}

#[test]
fn a_bad_bind_address_exits_2_naming_the_argument() {
    let binary = build_app("one", &["--plugins", "my_awesome_plugin"]);
    let output = Command::new(&binary)
        .args(["serve", "--bind", "localhost"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--bind"), "{stderr}");
}

#[test]
fn config_check_exits_2_listing_every_problem_and_0_when_valid() {
    let binary = build_app("one", &["--plugins", "my_awesome_plugin"]);
    let dir = workspace_root().join("target/feature-sets/config-check");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nbody_limit = 0\n[plugins.my_awesome_plugin]\ninterval = 0\n",
    )
    .unwrap();
    let output = Command::new(&binary)
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has 2 problems"), "{stderr}");
    assert!(
        stderr.contains("/plugins/my_awesome_plugin/interval: 0 is less than the minimum of 1"),
        "{stderr}"
    );

    let example = Command::new(&binary)
        .args(["config", "example"])
        .output()
        .unwrap();
    assert!(example.status.success());
    let good = dir.join("good.toml");
    std::fs::write(&good, &example.stdout).unwrap();
    run_ok(
        &binary,
        &["config".as_ref(), "check".as_ref(), good.as_os_str()],
    );

    // The same invalid setting from the environment also stops the server from starting.
    let output = Command::new(&binary)
        .args(["serve", "--config"])
        .arg(&good)
        .env("PLEXICHAT__PLUGINS__MY_AWESOME_PLUGIN__INTERVAL", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_served_binary_uses_its_config_file_and_reloads_it() {
    use std::os::unix::fs::PermissionsExt;

    let binary = build_app("one", &["--plugins", "my_awesome_plugin"]);
    let dir = plexichat_tests::scratch("reload");
    let write = |enabled: &str| {
        std::fs::write(
            dir.join("plexichat.toml"),
            format!("[plugins.my_awesome_plugin]\nenabled = {enabled}\ninterval = 5\n"),
        )
        .unwrap()
    };
    write("false");
    // No `--config`: `plexichat.toml` in the working directory is read.
    let (mut child, addr, lines) = spawn_server(&binary, &dir, &[]);
    let token_file = dir.join("data/admin_token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated token is private");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    let bearer = format!("Bearer {token}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reload = |authorization: &str| {
        let authorization = authorization.to_string();
        async move {
            plexichat_tests::request_with(
                addr,
                "POST",
                "/api/v1/admin/config/reload",
                &[("authorization", &authorization)],
            )
            .await
        }
    };
    runtime.block_on(async {
        let (status, body) = plexichat_tests::request(addr, "POST", "/api/v1/awesome/action").await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("Plugin is disabled"))
        );

        // SIGHUP applies an edited file.
        write("true");
        signal(&child, "HUP");
        let mut enabled = false;
        for _ in 0..100 {
            let (_, body) = plexichat_tests::request(addr, "GET", "/api/v1/awesome/status").await;
            if body["enabled"] == json!(true) {
                enabled = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(enabled, "SIGHUP reload took effect");

        // An invalid file is rejected by the admin reload and changes nothing.
        std::fs::write(
            dir.join("plexichat.toml"),
            "[plugins.my_awesome_plugin]\ninterval = 0\n",
        )
        .unwrap();
        let (status, body) = reload(&bearer).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issues"][0]["pointer"],
            "/plugins/my_awesome_plugin/interval"
        );
        let (_, body) = plexichat_tests::request(addr, "GET", "/api/v1/awesome/status").await;
        assert_eq!(body["config"], json!({ "enabled": true, "interval": 5 }));

        // The implicit file going missing is an error, not a fall-back to the defaults
        // (which would re-enable what the file had disabled).
        std::fs::remove_file(dir.join("plexichat.toml")).unwrap();
        let (status, body) = reload(&bearer).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["issues"][0]["problem"]
                .as_str()
                .unwrap()
                .starts_with("cannot read the file"),
            "{body}"
        );

        let (status, _) = reload("Bearer not-the-token").await;
        assert_eq!(status, 401);
    });
    signal(&child, "TERM");
    assert!(child.0.wait().unwrap().success());
    let log: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        !log.iter().any(|line| line.contains(&token)),
        "the token is never logged"
    );
    let failed = log
        .iter()
        .find(|line| line.contains("admin authentication failed"))
        .expect("failed authentication is logged");
    assert!(failed.contains("client=127.0.0.1:"), "{failed}");
    assert!(
        log.iter()
            .any(|line| line.contains("admin action") && line.contains("client=127.0.0.1:")),
        "{log:#?}"
    );
    let mode = std::fs::metadata(dir.join("data"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "the data directory is private");
}

#[test]
fn plugins_list_shows_the_state_the_configuration_starts_each_plugin_in() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let dir = plexichat_tests::scratch("list-states");
    let config = dir.join("states.toml");
    std::fs::write(&config, "disabled = [\"my_awesome_plugin\"]\n").unwrap();
    let output = run_ok(
        &binary,
        &[
            "plugins".as_ref(),
            "list".as_ref(),
            "--json".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
    );
    let listed: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("my_awesome_plugin", "disabled"),
            ("awesome_audit", "disabled_because_dependency")
        ]
    );
    // As text, with no server asked, a plugin set to run is "enabled", and the listing says
    // where a server's live states are.
    let output = run_ok(&binary, &["plugins".as_ref(), "list".as_ref()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("CONFIGURED"), "{text}");
    let states: Vec<&str> = text
        .lines()
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().nth(3))
        .collect();
    assert_eq!(states, ["enabled", "enabled"], "{text}");
    assert!(text.contains("GET /api/v1/admin/plugins"), "{text}");
}

/// Waits for `server` to exit; `None` if it is still running after 30 s (a hang).
fn exit_status(server: &mut Server) -> Option<std::process::ExitStatus> {
    for _ in 0..300 {
        if let Some(status) = server.0.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

#[test]
fn command_line_limits_are_validated_like_the_file() {
    let binary = build_app("one", &["--plugins", "my_awesome_plugin"]);
    let output = Command::new(&binary)
        .args(["serve", "--bind", "127.0.0.1:0", "--body-limit", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("/server/body_limit: 0 is less than the minimum of 1 (set by --body-limit)"),
        "{stderr}"
    );
}

/// Serves `binary` with `drain_timeout`, sends one byte of a request (and keeps the
/// connection open), then SIGTERMs the server; returns the server, its log and the client.
fn terminate_with_a_half_sent_request(
    binary: &Path,
    dir: &Path,
    drain_timeout: &str,
) -> (Server, Log, std::net::TcpStream) {
    use std::io::Write;
    let mut command = Command::new(binary);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("PLEXICHAT__SERVER__DRAIN_TIMEOUT", drain_timeout)
        .env("PLEXICHAT__SERVER__HEADER_READ_TIMEOUT", "1h");
    let (server, addr, lines) = spawn_command(command, dir);
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.write_all(b"G").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    signal(&server, "TERM");
    (server, lines, client)
}

/// A client that sent one byte keeps neither a SIGTERM'd server alive past the drain
/// timeout nor the `shutdown` event and `stop` hooks from running; a second signal during a
/// long drain exits at once.
#[test]
fn a_half_sent_request_cannot_hold_a_terminated_server() {
    let binary = build_app("one", &["--plugins", "my_awesome_plugin"]);
    let dir = plexichat_tests::scratch("one-byte");

    let (mut server, lines, _client) = terminate_with_a_half_sent_request(&binary, &dir, "1s");
    let status = exit_status(&mut server).expect("the server exited");
    let log: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(status.success(), "exit {status}: {log:#?}");
    assert!(
        log.iter()
            .any(|line| line.contains("closing connections still open after the drain timeout")),
        "{log:#?}"
    );
    assert!(log.iter().any(|line| line.contains("stopped")), "{log:#?}");

    let (mut server, _lines, _client) = terminate_with_a_half_sent_request(&binary, &dir, "1h");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "still draining after the first signal"
    );
    signal(&server, "TERM");
    let status = exit_status(&mut server).expect("the second signal ended it");
    assert_eq!(status.code(), Some(130));
}

/// With the common limit of 1024 open files, 1,100 idle connections neither crash the
/// server nor keep a new client from being served once the idle timeout has passed.
#[test]
fn idle_connections_cannot_exhaust_the_descriptor_limit() {
    let binary = build_app("one", &["--plugins", "my_awesome_plugin"]);
    let dir = plexichat_tests::scratch("idle-flood");
    // This test process holds the 1,100 client sockets, so it needs more than 1024 itself.
    let own_limit = raise_descriptor_limit(4096);
    assert!(
        own_limit >= 2048,
        "this test needs to open 1,100 sockets, but its hard limit on open files is {own_limit}"
    );
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -n 1024 && exec \"$0\" serve --bind 127.0.0.1:0",
        ])
        .arg(&binary)
        .env("PLEXICHAT__SERVER__IDLE_TIMEOUT", "10s");
    let (_server, addr, lines) = spawn_command(command, &dir);
    let idle: Vec<std::net::TcpStream> = (0..1100)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, _) = runtime.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            plexichat_tests::request(addr, "GET", "/health"),
        )
        .await
        .expect("served once the idle connections timed out")
    });
    assert_eq!(status, 200);
    drop(idle);
    drop(_server);
    let log: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        log.iter()
            .any(|line| line
                .contains("max_connections is above what the file-descriptor limit allows")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|line| line.contains("connection limit reached")),
        "{log:#?}"
    );
}

/// Raises this process's soft limit on open files towards `wanted`; returns the new limit.
fn raise_descriptor_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls only read or write the struct on this stack.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

/// Copies `from` into `to`, skipping build output.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if ["target", "dist", "data"].contains(&name.to_string_lossy().as_ref()) {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// What `cargo xtask new-plugin` writes compiles, its own test passes, and the app it wires
/// the plugin into builds and lists it. The scratch workspace holds copies of the app and the
/// plugins and points at this repository's `core` and `macros`, so only the new crate and
/// the app are compiled, into this repository's target directory.
#[test]
fn the_scaffold_of_new_plugin_compiles_and_its_test_passes() {
    let root = workspace_root();
    let scratch = root.join("target/feature-sets/scratch/new-plugin-workspace");
    let _ = std::fs::remove_dir_all(&scratch);
    // `docs/` too: the `docs` plugin embeds the repository's docs.
    for part in ["app", "plugins", "docs"] {
        copy_tree(&root.join(part), &scratch.join(part));
    }
    std::fs::copy(root.join("Cargo.lock"), scratch.join("Cargo.lock")).unwrap();
    std::fs::copy(
        root.join("rust-toolchain.toml"),
        scratch.join("rust-toolchain.toml"),
    )
    .unwrap();
    let original = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = original
        .lines()
        .find(|line| line.starts_with("members = ["))
        .expect("the workspace lists its members on one line");
    // Core's crates (`core`, `core/kernel`, …) and the macros stay where they are.
    let manifest = original
        .replace(members, "members = [\"plugins/*\", \"app\"]")
        .replace(
            "path = \"core",
            &format!("path = \"{}", root.join("core").display()),
        )
        .replace(
            "path = \"macros\"",
            &format!("path = \"{}\"", root.join("macros").display()),
        );
    assert!(
        manifest.contains(&format!(
            "path = \"{}/kernel\"",
            root.join("core").display()
        )),
        "the workspace's core crates moved; update this test"
    );
    std::fs::write(scratch.join("Cargo.toml"), manifest).unwrap();

    let created = xtask::new_plugin::new_plugin(&scratch, "scaffold_check").unwrap();
    assert!(created.join("src/lib.rs").is_file());
    let status = Command::new(env!("CARGO"))
        .current_dir(&scratch)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .args(["test", "--quiet", "--package", "scaffold_check"])
        .status()
        .unwrap();
    assert!(status.success(), "the scaffold's own test failed");
    let output = Command::new(env!("CARGO"))
        .current_dir(&scratch)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .args([
            "run",
            "--quiet",
            "--package",
            "plexichat-app",
            "--features",
            "scaffold_check",
            "--",
            "plugins",
            "info",
            "scaffold_check",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(info["prefix"], "/api/v1/scaffold-check");
    assert_eq!(info["state"], "running");
}

/// Copies the workspace at `from` into `to` as a checkout would have it: without build output
/// (`target`, `dist`), runtime files (`data`) or `.git`. Modification times are kept, so that
/// cargo finds the copy's unchanged crates fresh in a target directory kept between runs.
fn copy_workspace(from: &Path, to: &Path, top_level: bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if top_level
            && [".git", "target", "dist", "data"].contains(&name.to_string_lossy().as_ref())
        {
            continue;
        }
        let (source, destination) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_workspace(&source, &destination, false);
        } else {
            std::fs::copy(&source, &destination).unwrap();
            let modified = entry.metadata().unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&destination)
                .unwrap()
                .set_modified(modified)
                .unwrap();
        }
    }
}

/// Runs `command`, failing the test with its output unless it succeeds; returns its stdout
/// and stderr.
fn succeed(mut command: Command, what: &str) -> (String, String) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
    );
    (stdout, stderr)
}

/// An author's first steps never break the framework's own suite. In a copy of this
/// workspace, `cargo xtask new-plugin hello_world` adds a plugin, which is then given a
/// dependency on `my_awesome_plugin` without running `cargo xtask codegen` (the step a
/// newcomer forgets, leaving the app's wiring stale). Then, in the copy:
///
/// - `cargo xtask build-app --plugins hello_world` brings the wiring up to date itself
///   (saying so in one line) and builds a binary that passes its start-up check and lists
///   both plugins (with stale wiring it refuses: "registered plugins that were not enabled");
/// - every test of this module (the composition tests, which read the copy's `plugins/`)
///   except the two that copy workspaces, and the tidy checks, pass against the copy: this
///   test binary runs itself again with `PLEXICHAT_TESTS_WORKSPACE` pointing there;
/// - `cargo test -p xtask` passes there (generated files fresh, every plugin in the test plan).
///
/// Expensive, so it runs once (in the `it` binary, which `cargo xtask test` runs once, with the
/// linkme backend) and builds into `target/scratch-workspace/target`, which is kept: the copy
/// sits at a fixed path with its files' times preserved, so later runs rebuild only what the
/// new plugin touches. Measured on 2 cores shared with other builds, `CARGO_BUILD_JOBS=1`:
/// about 7 minutes the first time (it compiles the app's dependencies for the static target
/// and the xtask's for the host into that directory), under a minute afterwards. It prints
/// its phase times under `--nocapture`.
#[test]
fn a_new_plugin_in_a_copy_of_the_workspace_breaks_none_of_its_tests() {
    let started = std::time::Instant::now();
    let root = workspace_root();
    let scratch = root.join("target/scratch-workspace");
    let copy = scratch.join("workspace");
    // Its own target directory: this suite's other tests build into the main one at the same
    // time, and cargo's final binary path is shared by every feature set built there.
    let target_dir = scratch.join("target");
    let _ = std::fs::remove_dir_all(&copy);
    copy_workspace(&root, &copy, true);
    let cargo = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(&copy)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(args);
        command
    };

    succeed(
        cargo(&["xtask", "new-plugin", "hello_world"]),
        "cargo xtask new-plugin hello_world",
    );
    let plugin = copy.join("plugins/hello_world");
    let edit = |file: &str, from: &str, to: &str| {
        let path = plugin.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(from),
            "the scaffold's {file} has no `{from}`; update this test"
        );
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit(
        "Cargo.toml",
        "plexichat.workspace = true\n",
        "plexichat.workspace = true\nmy_awesome_plugin = { path = \"../my_awesome_plugin\" }\n",
    );
    edit(
        "src/lib.rs",
        "type = feature,",
        "type = feature, dependencies = [my_awesome_plugin::AwesomePlugin],",
    );
    let scaffolded = started.elapsed();

    let binary = copy.join("target/feature-sets/hello/plexichat");
    let mut build = cargo(&["xtask", "build-app", "--plugins", "hello_world", "--out"]);
    build.arg(&binary);
    let (_, stderr) = succeed(build, "cargo xtask build-app --plugins hello_world");
    assert!(
        stderr.contains("updated app/Cargo.toml") && stderr.contains("cargo xtask codegen"),
        "build-app did not say that it regenerated the wiring:\n{stderr}"
    );
    assert_eq!(
        listed_plugins(&binary),
        ["my_awesome_plugin", "hello_world"]
    );
    let built = started.elapsed();

    let mut itself = Command::new(std::env::current_exe().unwrap());
    itself
        .args(["binary::", "tidy::"])
        .args(["--skip", "binary::a_new_plugin_in_a_copy_of_the_workspace"])
        .args(["--skip", "binary::the_scaffold_of_new_plugin_compiles"])
        .env(plexichat_tests::WORKSPACE_VARIABLE, &copy)
        .env("CARGO_TARGET_DIR", &target_dir);
    let (report, _) = succeed(itself, "this module's tests against the copy");
    // A filter that matched nothing would pass too: check that the tests that read the
    // plugin list ran, with the tidy checks.
    for test in [
        "binary::features_decide_exactly_what_is_in_the_static_binary",
        "binary::the_workspace_listing_describes_plugins_as_the_binary_does",
        "binary::enabling_a_plugin_enables_its_dependencies",
        "tidy::every_file_starts_with_a_module_doc_comment",
    ] {
        assert!(
            report.contains(&format!("test {test} ... ok")),
            "{test} did not run against the copy:\n{report}"
        );
    }
    let composed = started.elapsed();

    succeed(
        cargo(&["test", "--package", "xtask"]),
        "cargo test -p xtask in the copy",
    );
    eprintln!(
        "workspace copy: scaffolded in {:.0?}, first build-app after {:.0?}, composition and \
         tidy tests after {:.0?}, xtask tests after {:.0?}",
        scaffolded,
        built,
        composed,
        started.elapsed()
    );
}

/// What the example plugins store survives a restart of the real binary, on embedded
/// SQLite (the default, `./data/plexichat.db`) and on PostgreSQL chosen by one setting; and
/// a changed migration stops the next start, naming plugin and file.
#[test]
fn stored_data_survives_a_restart_on_both_engines() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let postgres = runtime.block_on(async {
        let db = plexichat::testing::fresh_postgres_database().await;
        db.url().expose().to_string()
    });
    for database in [None, Some(postgres)] {
        let dir = plexichat_tests::scratch("restart");
        for round in 1..=2u64 {
            let mut command = Command::new(&binary);
            command.args(["serve", "--bind", "127.0.0.1:0"]);
            if let Some(url) = &database {
                command.env("PLEXICHAT__DATA__DATABASE", url);
            }
            let (mut server, addr, lines) = spawn_command(command, &dir);
            runtime.block_on(async {
                let (status, body) =
                    plexichat_tests::request(addr, "POST", "/api/v1/awesome/action").await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["actions_performed"], round, "{database:?}");
                let (_, body) =
                    plexichat_tests::request(addr, "GET", "/api/v1/awesome/status").await;
                assert_eq!(body["stats"]["actions_performed"], round, "{database:?}");
                let (_, body) =
                    plexichat_tests::request(addr, "GET", "/api/v1/awesome-audit/events").await;
                assert_eq!(body["total"], round, "{database:?}: {body}");
                let numbers: Vec<u64> = body["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|event| event["payload"]["action_number"].as_u64().unwrap())
                    .collect();
                assert_eq!(numbers, (1..=round).collect::<Vec<_>>(), "{database:?}");
            });
            signal(&server, "TERM");
            let status = server.0.wait().unwrap();
            let rest: Vec<String> = lines.map(Result::unwrap).collect();
            assert!(status.success(), "exit {status}; stderr: {rest:#?}");
        }
        if database.is_none() {
            assert!(
                dir.join("data/plexichat.db").is_file(),
                "the default database file"
            );
        }
    }
}

#[test]
fn a_changed_migration_stops_the_start_naming_plugin_and_file() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let dir = plexichat_tests::scratch("changed-migration");
    let migrate = Command::new(&binary)
        .args(["db", "migrate"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    // Tamper with the recorded checksum, as if the file had been edited after it ran.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = plexichat_kernel::storage::database::DatabaseUrl::sqlite_file(
            &dir.join("data/plexichat.db"),
        );
        let db = plexichat_kernel::storage::Database::open(&url)
            .await
            .unwrap();
        plexichat::sqlx::query(
            "UPDATE plexichat_migrations SET checksum = 'x' WHERE plugin = 'awesome_audit'",
        )
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
    });
    let serve = Command::new(&binary)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("migration `migrations/sqlite/0001_create_events.sql` of plugin `awesome_audit` was changed after it was applied"),
        "{stderr}"
    );
    let status = Command::new(&binary)
        .args(["db", "status", "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    let audit = report["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plugin| plugin["plugin"] == "awesome_audit")
        .unwrap();
    assert_eq!(audit["migrations"][0]["state"], "changed");
}

/// `GET path` with a bearer token over a plain socket: the status and the raw body (a backup
/// download is a tar file, not JSON).
fn download(addr: std::net::SocketAddr, path: &str, bearer: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

#[test]
fn a_backup_taken_through_the_admin_api_restores_every_row_and_file() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = plexichat_tests::scratch("backup-round-trip");
    let note = dir.join("data/plugins/awesome_audit/notes/first.txt");
    let (mut server, addr, _lines) = spawn_server(&binary, &dir, &[]);
    let bearer = format!(
        "Bearer {}",
        std::fs::read_to_string(dir.join("data/admin_token"))
            .unwrap()
            .trim()
    );
    let id = runtime.block_on(async {
        for _ in 0..3 {
            let (status, _) =
                plexichat_tests::request(addr, "POST", "/api/v1/awesome/action").await;
            assert_eq!(status, 200);
        }
        std::fs::create_dir_all(note.parent().unwrap()).unwrap();
        std::fs::write(&note, "kept in the plugin's data folder").unwrap();
        let (status, body) = plexichat_tests::request(addr, "POST", "/api/v1/admin/backups").await;
        assert_eq!(status, 401, "a backup needs the token: {body}");
        let (status, body) = plexichat_tests::request_with(
            addr,
            "POST",
            "/api/v1/admin/backups",
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let paths: Vec<&str> = body["manifest"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "database/plexichat.sqlite",
                "plugins/awesome_audit/notes/first.txt"
            ]
        );
        let id = body["id"].as_str().unwrap().to_string();
        let (status, body) = plexichat_tests::request_with(
            addr,
            "GET",
            "/api/v1/admin/backups",
            &[("authorization", &bearer)],
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["backups"][0]["id"], id.as_str(), "{body}");
        id
    });
    let stored = std::fs::read(dir.join(format!("data/backups/{id}.tar"))).unwrap();
    let (status, bytes) = download(addr, &format!("/api/v1/admin/backups/{id}"), &bearer);
    assert_eq!(status, 200);
    assert!(bytes == stored, "the download is the stored archive");
    let (status, _) = download(addr, "/api/v1/admin/backups/..%2Fadmin_token", &bearer);
    assert_eq!(status, 404);
    // The seed's paths: the same backups, checked without a restore.
    let (status, bytes_again) = download(addr, &format!("/api/v1/backup/{id}"), &bearer);
    assert_eq!(status, 200);
    assert!(bytes_again == stored);
    std::fs::write(dir.join("data/backups/tampered-copy.tar"), {
        let mut tampered = stored.clone();
        tampered[1024] ^= 0x55;
        tampered
    })
    .unwrap();
    runtime.block_on(async {
        let auth = [("authorization", bearer.as_str())];
        let (status, body) =
            plexichat_tests::request_with(addr, "GET", "/api/v1/backup", &auth).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["backups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["id"] == id.as_str()),
            "{body}"
        );
        let (status, body) = plexichat_tests::request_with(
            addr,
            "POST",
            &format!("/api/v1/backup/{id}/verify"),
            &auth,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["valid"], true);
        assert_eq!(body["manifest"]["entries"].as_array().unwrap().len(), 2);
        let (status, body) = plexichat_tests::request_with(
            addr,
            "POST",
            "/api/v1/backup/tampered-copy/verify",
            &auth,
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], "backup_invalid");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("fails its checksum"),
            "{body}"
        );
        let (status, body) =
            plexichat_tests::request_with(addr, "POST", "/api/v1/backup/none/verify", &auth).await;
        assert_eq!(status, 404, "{body}");
        // What runs, and how it has done so far.
        let (status, _) = plexichat_tests::request(addr, "GET", "/api/v1/system/info").await;
        assert_eq!(status, 401);
        let (status, info) =
            plexichat_tests::request_with(addr, "GET", "/api/v1/system/info", &auth).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(info["database"]["engine"], "sqlite");
        assert!(info["uptime_seconds"].as_f64().unwrap() > 0.0);
        let plugins: Vec<(&str, &str)> = info["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            plugins,
            [
                ("my_awesome_plugin", "running"),
                ("awesome_audit", "running")
            ]
        );
        let (status, performance) =
            plexichat_tests::request_with(addr, "GET", "/api/v1/performance", &auth).await;
        assert_eq!(status, 200, "{performance}");
        let awesome = performance["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plugin"] == "my_awesome_plugin")
            .unwrap_or_else(|| panic!("{performance}"));
        assert_eq!(awesome["requests"], 3, "{performance}");
        assert_eq!(awesome["server_errors"], 0);
        let (p50, p99) = (
            awesome["latency_ms"]["p50"].as_f64().unwrap(),
            awesome["latency_ms"]["p99"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{awesome}");
        assert!(
            performance["requests"]["total"].as_u64().unwrap() >= 10,
            "{performance}"
        );
        assert!(performance["memory"]["rss_bytes"].as_u64().unwrap() > 1 << 20);
        assert!(performance["open_files"].as_u64().unwrap() > 0);
    });
    let copy = dir.join("copy.tar");
    std::fs::write(&copy, &bytes).unwrap();

    // Refused while the server runs, and nothing changes.
    let restore = |file: &Path| {
        Command::new(&binary)
            .args(["backup", "restore"])
            .arg(file)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let refused = restore(&copy);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("a server is running"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    signal(&server, "TERM");
    assert!(server.0.wait().unwrap().success());

    // Damaged copies are refused with the reason, before anything is touched.
    let verify = |file: &Path| {
        Command::new(&binary)
            .args(["backup", "verify"])
            .arg(file)
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let mut tampered = bytes.clone();
    tampered[1024] ^= 0x55;
    std::fs::write(dir.join("tampered.tar"), &tampered).unwrap();
    std::fs::write(dir.join("truncated.tar"), &bytes[..bytes.len() / 2]).unwrap();
    for (file, reason) in [
        ("tampered.tar", "fails its checksum"),
        ("truncated.tar", "truncated"),
    ] {
        let output = verify(&dir.join(file));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(reason), "{file}: {stderr}");
        assert_eq!(restore(&dir.join(file)).status.code(), Some(2), "{file}");
    }
    assert!(verify(&copy).status.success());

    // Wipe, restore, and every row and file is back.
    for file in ["plexichat.db", "plexichat.db-wal", "plexichat.db-shm"] {
        let _ = std::fs::remove_file(dir.join("data").join(file));
    }
    std::fs::remove_dir_all(dir.join("data/plugins")).unwrap();
    let restored = restore(&copy);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&note).unwrap(),
        "kept in the plugin's data folder"
    );
    let (server, addr, _lines) = spawn_server(&binary, &dir, &[]);
    runtime.block_on(async {
        let (_, body) = plexichat_tests::request(addr, "GET", "/api/v1/awesome/status").await;
        assert_eq!(body["stats"]["actions_performed"], 3, "{body}");
        let (_, body) = plexichat_tests::request(addr, "GET", "/api/v1/awesome-audit/events").await;
        assert_eq!(body["total"], 3, "{body}");
    });
    signal(&server, "TERM");
}

/// Runs `binary args…` in `dir` and returns its exit code, stdout and stderr.
fn run_in(binary: &Path, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary)
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .env_remove("PLEXICHAT_ADMIN_TOKEN")
        .output()
        .expect("binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn plugin_commands_run_on_the_stored_data_with_and_without_a_server() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let dir = plexichat_tests::scratch("commands");

    // Discoverable: the top-level help names each category, the category its commands, the
    // command its options, plugin and version.
    let (code, help, _) = run_in(&binary, &dir, &["--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("awesome") && help.contains("Commands of plugin my_awesome_plugin"),
        "{help}"
    );
    assert!(help.contains("audit"), "{help}");
    let (code, help, _) = run_in(&binary, &dir, &["awesome", "--help"]);
    assert_eq!(code, 0);
    for command in ["stats", "reset-stats", "action"] {
        assert!(help.contains(command), "{help}");
    }
    let (code, help, _) = run_in(&binary, &dir, &["awesome", "stats", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Shows the stored statistics"), "{help}");
    assert!(help.contains("--json"), "{help}");
    assert!(help.contains("--yes"), "{help}");
    // Only a command that acts on a server takes `--server`.
    assert!(!help.contains("--server"), "{help}");
    let (code, help, _) = run_in(&binary, &dir, &["awesome", "action", "--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("--server") && help.contains("Acts on a running server: needs --server."),
        "{help}"
    );
    assert!(
        help.contains("Provided by plugin `my_awesome_plugin` 0.1.0, since 0.1.0."),
        "{help}"
    );

    // The listing, sorted by category and name, as text and as JSON.
    let (code, list, _) = run_in(&binary, &dir, &["commands", "list", "--json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&list).unwrap();
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["category"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "audit events",
            "awesome action",
            "awesome reset-stats",
            "awesome stats"
        ]
    );
    assert_eq!(list[2]["flags"]["dangerous"], true);
    assert_eq!(list[2]["flags"]["admin_only"], true);
    assert_eq!(list[2]["plugin"], "my_awesome_plugin");
    let (_, text, _) = run_in(&binary, &dir, &["commands", "list"]);
    assert!(
        text.contains("awesome reset-stats") && text.contains("[admin-only, dangerous]"),
        "{text}"
    );
    assert!(text.contains("[server]"), "{text}");
    assert_eq!(list[1]["flags"]["server"], true);

    // Bad usage is clap's exit 2, naming the argument.
    let (code, _, err) = run_in(&binary, &dir, &["audit", "events", "--limit", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--limit"), "{err}");
    let (code, _, err) = run_in(&binary, &dir, &["awesome", "nope"]);
    assert_eq!(code, 2, "{err}");

    // With a server: actions go through it; `awesome action` needs `--server`.
    let (code, _, err) = run_in(&binary, &dir, &["awesome", "action"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pass `--server http://HOST:PORT`"), "{err}");
    let (mut server, addr, lines) = spawn_server(&binary, &dir, &[]);
    let url = format!("http://{addr}");
    for expected in ["1 so far", "2 so far"] {
        let (code, out, err) = run_in(&binary, &dir, &["awesome", "action", "--server", &url]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(expected), "{out}");
    }
    // Commands read the same database while the server runs on it.
    let (code, out, err) = run_in(&binary, &dir, &["awesome", "stats", "--json"]);
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["actions_performed"], 2, "{out}");
    signal(&server, "TERM");
    assert!(server.0.wait().unwrap().success());
    drop(lines);

    // Without a server.
    let (code, out, err) = run_in(&binary, &dir, &["audit", "events", "--limit", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("2 events recorded; the latest 1:"), "{out}");
    assert!(out.contains("\"action_number\":2"), "{out}");

    // Admin only: a token that is not the data folder's is refused.
    let (code, _, err) = run_in(
        &binary,
        &dir,
        &[
            "awesome",
            "reset-stats",
            "--yes",
            "--token",
            "not-the-token",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not this data directory's admin token"),
        "{err}"
    );
    // Dangerous: refused without a terminal unless `--yes`, and nothing changes.
    let (code, _, err) = run_in(&binary, &dir, &["awesome", "reset-stats"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pass --yes"), "{err}");
    let (_, out, _) = run_in(&binary, &dir, &["awesome", "stats"]);
    assert!(out.contains("actions performed: 2"), "{out}");
    let (code, out, err) = run_in(&binary, &dir, &["awesome", "reset-stats", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("statistics reset to zero"), "{out}");
    let (_, out, _) = run_in(&binary, &dir, &["awesome", "stats"]);
    assert!(out.contains("actions performed: 0"), "{out}");
    // So is a wrong `PLEXICHAT_ADMIN_TOKEN`, which is what the command is given without
    // `--token`; the right one is taken.
    let with_variable = |token: &str| {
        Command::new(&binary)
            .current_dir(&dir)
            .args(["awesome", "reset-stats", "--yes"])
            .stdin(std::process::Stdio::null())
            .env("PLEXICHAT_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    let refused = with_variable("a-wrong-token-0123456789-0123456789-ab");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("(--token or PLEXICHAT_ADMIN_TOKEN)"), "{err}");
    // A local command has no `--server`: it cannot seem to act on a server while it changes
    // this machine's data.
    let (code, _, err) = run_in(
        &binary,
        &dir,
        &["awesome", "reset-stats", "--yes", "--server", &url],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--server"), "{err}");
    let token = std::fs::read_to_string(dir.join("data/admin_token")).unwrap();
    let taken = with_variable(token.trim());
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    // `--token-file` keeps the token out of `ps`; it is checked the same way.
    let file = dir.join("token.txt");
    std::fs::write(&file, "a-wrong-token-0123456789-0123456789-ab\n").unwrap();
    let (code, _, err) = run_in(
        &binary,
        &dir,
        &[
            "awesome",
            "reset-stats",
            "--yes",
            "--token-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not this data directory's admin token"),
        "{err}"
    );
    std::fs::write(&file, &token).unwrap();
    let (code, _, err) = run_in(
        &binary,
        &dir,
        &[
            "awesome",
            "reset-stats",
            "--yes",
            "--token-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, help, _) = run_in(&binary, &dir, &["awesome", "reset-stats", "--help"]);
    assert!(
        help.contains("--token-file") && help.contains("`ps`"),
        "{help}"
    );

    // A plugin the configuration disables runs no commands.
    std::fs::write(
        dir.join("plexichat.toml"),
        "disabled = [\"my_awesome_plugin\"]\n",
    )
    .unwrap();
    let (code, _, err) = run_in(&binary, &dir, &["awesome", "stats"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("does not run with this configuration"),
        "{err}"
    );
}

/// Writes a plugin crate into a fresh folder outside the repository and returns its path.
fn external_plugin(crate_name: &str, plugin_attribute: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("plexichat-external-{}", std::process::id()))
        .join(crate_name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let core = workspace_root().join("core");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{crate_name}\"\nversion = \"0.3.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nplexichat = {{ path = {:?} }}\n",
            core.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        format!(
            "//! A plugin that lives outside the PlexiChat repository.\n\n\
             use plexichat::prelude::*;\n\n\
             /// Reports the weather, from elsewhere.\n\
             {plugin_attribute}\n\
             #[derive(Default)]\n\
             pub struct Outside;\n\n\
             #[route(GET, \"/today\")]\n\
             async fn today() -> Json<Value> {{\n    Json(json!({{ \"sky\": \"clear\" }}))\n}}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_plugin_from_outside_the_repository_builds_into_the_binary_without_touching_it() {
    let manifest_before = std::fs::read_to_string(workspace_root().join("app/Cargo.toml")).unwrap();
    let plugins_before =
        std::fs::read_to_string(workspace_root().join("app/src/plugins.rs")).unwrap();
    let outside = external_plugin("weather_ext", "#[plugin(author = \"Someone Else\")]");
    let with = format!("weather_ext={}", outside.display());
    let binary = build_app(
        "external",
        &["--plugins", "my_awesome_plugin", "--with", &with],
    );

    let mut names = listed_plugins(&binary);
    names.sort();
    assert_eq!(names, ["my_awesome_plugin", "weather_ext"]);
    let info = run_ok(
        &binary,
        &["plugins".as_ref(), "info".as_ref(), "weather_ext".as_ref()],
    );
    assert!(
        contains(
            &info.stdout,
            "route  GET /api/v1/weather-ext/today -> today"
        ),
        "{}",
        String::from_utf8_lossy(&info.stdout)
    );
    assert!(contains(&info.stdout, "weather_ext 0.3.0"));
    // The repository's own wiring is as it was.
    assert_eq!(
        std::fs::read_to_string(workspace_root().join("app/Cargo.toml")).unwrap(),
        manifest_before
    );
    assert_eq!(
        std::fs::read_to_string(workspace_root().join("app/src/plugins.rs")).unwrap(),
        plugins_before
    );

    // A crate whose plugin registers under another name than the one asked for is caught by
    // the registered-equals-requested check, like a plugin the linker dropped.
    let misnamed = external_plugin(
        "misnamed_ext",
        "#[plugin(name = \"something_else\", author = \"Someone Else\")]",
    );
    let with = format!("misnamed_ext={}", misnamed.display());
    let binary = build_app(
        "external-misnamed",
        &["--plugins", "my_awesome_plugin", "--with", &with],
    );
    let output = Command::new(&binary)
        .args(["plugins", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("misnamed_ext") && stderr.contains("something_else"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(outside.parent().unwrap());
}

#[test]
fn bad_with_arguments_are_refused_naming_the_fix() {
    let refused = |spec: &str| build_app_refuses(&["--with", spec]);
    assert!(refused("weather").contains("write `name=path/to/crate`"));
    assert!(refused("weather=/nonexistent/weather").contains("holds no Cargo.toml"));
    assert!(refused("awesome_audit=plugins/awesome_audit").contains("already has a plugin"));
}

#[test]
fn tests_run_starts_the_plugins_for_the_command_and_records_each_run() {
    // `tests run` is a `starts_plugins` command: the framework starts every plugin before it
    // and stops them after, since no plugin may start another itself.
    let binary = build_app("all", &["--all"]);
    let dir = plexichat_tests::scratch("tests-run");
    let (code, help, _) = run_in(&binary, &dir, &["tests", "run", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Starts the plugins"), "{help}");
    let (code, list, _) = run_in(&binary, &dir, &["commands", "list", "--json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&list).unwrap();
    let starting: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|command| command["flags"]["starts_plugins"] == true)
        .map(|command| format!("{} {}", command["category"], command["name"]))
        .collect();
    assert_eq!(starting, ["\"tests\" \"run\""]);

    // The shell's tests read every plugin through `plugins:read` and fetch `/` from the
    // running shell: they pass only if the plugins really started.
    let (code, out, err) = run_in(&binary, &dir, &["tests", "run", "shell", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let runs: Value = serde_json::from_str(&out).unwrap();
    let runs = runs.as_array().unwrap();
    assert!(runs.len() >= 2, "{out}");
    for run in runs {
        assert_eq!(run["plugin_name"], "shell", "{run}");
        assert_eq!(run["status"], "passed", "{run}");
        assert_eq!(run["trigger"], "cli", "{run}");
    }
    // Each run is in the history, read by a command that does not start the plugins.
    let (code, out, err) = run_in(&binary, &dir, &["tests", "results", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let stored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored.as_array().unwrap().len(), runs.len(), "{out}");
}

/// An archive a PostgreSQL server wrote restores into a SQLite configuration through the
/// binary alone, the case in which no database had been opened in the process before the
/// restore connected (it panicked with "No drivers installed"), and leaves no scratch files.
#[test]
fn the_binary_restores_a_postgresql_backup_into_sqlite_and_leaves_no_scratch() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(plexichat::testing::fresh_postgres_database());
    let url = database.url().expose().to_string();
    runtime.block_on(database.close());

    let source = plexichat_tests::scratch("cross-engine-source");
    std::fs::write(
        source.join("plexichat.toml"),
        format!("[data]\ndatabase = {url:?}\n"),
    )
    .unwrap();
    let run = |dir: &Path, args: &[&str]| {
        let output = Command::new(&binary)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let (code, stderr) = run(&source, &["db", "migrate"]);
    assert_eq!(code, Some(0), "{stderr}");
    runtime.block_on(async {
        let url = plexichat_kernel::config::database::DatabaseUrl::parse(&url).unwrap();
        let database = plexichat_kernel::storage::Database::open(&url).await.unwrap();
        plexichat::sqlx::query(
            "INSERT INTO awesome_audit_events (event, payload, received_at) VALUES ('e', 'from PostgreSQL', 't')",
        )
        .execute(database.pool())
        .await
        .unwrap();
        database.close().await;
    });
    let archive = source.join("from-postgres.tar");
    let (code, stderr) = run(
        &source,
        &["backup", "create", "--out", archive.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{stderr}");

    let target = plexichat_tests::scratch("cross-engine-target");
    let (code, stderr) = run(&target, &["backup", "restore", archive.to_str().unwrap()]);
    assert_eq!(code, Some(0), "the restore failed or panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (code, stderr) = run(&target, &["db", "status"]);
    assert_eq!(code, Some(0), "{stderr}");
    let payload: String = runtime.block_on(async {
        let url = plexichat_kernel::config::database::DatabaseUrl::sqlite_file(
            &target
                .join("data")
                .join(plexichat_kernel::config::DEFAULT_DATABASE_FILE),
        );
        let database = plexichat_kernel::storage::Database::open(&url)
            .await
            .unwrap();
        let payload = plexichat::sqlx::query_scalar("SELECT payload FROM awesome_audit_events")
            .fetch_one(database.pool())
            .await
            .unwrap();
        database.close().await;
        payload
    });
    assert_eq!(payload, "from PostgreSQL");
    let leftovers: Vec<String> = std::fs::read_dir(target.join("data"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".restore"))
        .collect();
    assert!(leftovers.is_empty(), "scratch left behind: {leftovers:?}");
}

/// A command whose reader went away (`plexichat plugins list | head -1`) ends quietly with
/// the status a shell reports for a closed pipe, a core command and a plugin's alike, never
/// with a panic.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let binary = build_app("all", &["--all"]);
    let dir = plexichat_tests::scratch("closed-pipe-commands");
    for args in [
        &["plugins", "list"][..],
        &["tests", "list"][..],
        &["config", "example"][..],
    ] {
        let mut child = Command::new(&binary)
            .args(args)
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
        assert!(
            output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            output.status
        );
    }
}

/// A security header setting no header can carry is refused by `config check` (exit 2,
/// naming the setting), instead of being accepted and dropping the header from every answer.
#[test]
fn config_check_refuses_header_settings_no_header_can_carry() {
    let binary = build_app("all", &["--all"]);
    let dir = plexichat_tests::scratch("header-settings");
    for (setting, value, named) in [
        (
            "content_security_policy",
            "\"\"\"default-src 'self';\nimg-src 'self'\"\"\"",
            "content_security_policy: a header value is one line",
        ),
        (
            "request_id_header",
            "\"x request id\"",
            "request_id_header: \"x request id\" is not a header name",
        ),
        (
            "frame_options",
            "\"ALLOW-ALL\"",
            "frame_options: \"ALLOW-ALL\" is not an X-Frame-Options value",
        ),
    ] {
        std::fs::write(
            dir.join("plexichat.toml"),
            format!("[plugins.security]\n{setting} = {value}\n"),
        )
        .unwrap();
        let output = Command::new(&binary)
            .args(["config", "check"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{setting}: {stderr}");
        assert!(stderr.contains(named), "{setting}: {stderr}");
    }
    std::fs::write(
        dir.join("plexichat.toml"),
        "[plugins.security]\ncontent_security_policy = \"default-src 'self'; img-src 'self'\"\nframe_options = \"sameorigin\"\n",
    )
    .unwrap();
    let output = Command::new(&binary)
        .args(["config", "check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// On embedded SQLite a data folder serves one server at a time, until that server's
/// process has exited: a second `serve` on it is refused with the reason, also while the
/// first drains and stops, and starts once the first is gone.
#[test]
fn a_second_server_on_the_same_sqlite_folder_is_refused_until_the_first_exits() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let dir = plexichat_tests::scratch("serving-lock");
    let (mut first, _addr, _lines) = spawn_server(&binary, &dir, &[]);
    let second = Command::new(&binary)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another server is serving from"),
        "{stderr}"
    );
    signal(&first, "TERM");
    assert!(first.0.wait().unwrap().success());
    let (mut third, addr, _lines) = spawn_server(&binary, &dir, &[]);
    // Serving (its signal handler in place) before it is asked to stop.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, _) = runtime.block_on(plexichat_tests::request(addr, "GET", "/health"));
    assert_eq!(status, 200);
    signal(&third, "TERM");
    assert!(third.0.wait().unwrap().success());
}

/// A binary built without a plugin, asked for one of its commands, names the plugin and how
/// to build it in, instead of clap's bare "unrecognized subcommand".
#[test]
fn a_command_of_a_plugin_left_out_names_the_plugin_to_build_in() {
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let dir = plexichat_tests::scratch("left-out-command");
    let (code, _, err) = run_in(&binary, &dir, &["tests", "run"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`plexichat tests` is a command of plugin `test_manager`"),
        "{err}"
    );
    assert!(err.contains("cargo xtask build-app --plugins"), "{err}");
    assert!(err.contains("test_manager"), "{err}");
    // A word no plugin uses is still clap's to refuse.
    let (code, _, err) = run_in(&binary, &dir, &["nothing-like-this"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unrecognized subcommand"), "{err}");
}

/// A data folder anyone may write to is refused, saying how to fix it: whoever can write it
/// can replace the database or the admin token.
#[test]
fn a_world_writable_data_folder_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let binary = build_app("audit", &["--plugins", "awesome_audit"]);
    let dir = plexichat_tests::scratch("world-writable");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::set_permissions(dir.join("data"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run_in(&binary, &dir, &["db", "status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("lets anyone write to it"), "{err}");
    assert!(err.contains("chmod 700"), "{err}");
    std::fs::set_permissions(dir.join("data"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, _, err) = run_in(&binary, &dir, &["db", "status"]);
    assert_eq!(code, 0, "{err}");
}
