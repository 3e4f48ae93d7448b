//! The desktop window: `plexichat-gui` (the app's `gui` feature) built here, started under a
//! virtual X server (Xvfb) with an in-process server, and its screen read back with `xwd`
//! until it shows the Test Dashboard with the tab strip. The screenshot is kept as
//! `target/browser/gui.png`. And `plexichat gui` without the window: the system browser.
//!
//! WebKitGTK's headers, Xvfb and xwd are required, never optional: without them this test
//! fails and says how to install them (`.ci/run` does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plexichat_tests::{scratch, workspace_root};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn build_window() -> PathBuf {
    let root = workspace_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--package",
            "plexichat-app",
            "--features",
            "gui",
            "--bin",
            "plexichat-gui",
        ])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building plexichat-gui failed; it needs `apt-get install libwebkit2gtk-4.1-dev pkg-config`"
    );
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("debug/plexichat-gui")
}

/// An X display number nobody uses.
fn free_display() -> u32 {
    (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number")
}

/// An RGB screenshot of the whole screen of `display`.
struct Screen {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Screen {
    /// Reads the screen with `xwd` (ZPixmap, 32 bits per pixel, as Xvfb's 24-bit screen
    /// gives it).
    fn grab(display: &str) -> Option<Screen> {
        let output = Command::new("xwd")
            .args(["-root", "-silent", "-display", display])
            .output()
            .expect("xwd runs (apt-get install x11-apps)");
        if !output.status.success() {
            return None;
        }
        let data = output.stdout;
        let word = |index: usize| -> u32 {
            u32::from_be_bytes(data[index * 4..index * 4 + 4].try_into().unwrap())
        };
        let header_size = word(0) as usize;
        let (width, height) = (word(4) as usize, word(5) as usize);
        let byte_order = word(7);
        let bits_per_pixel = word(11);
        let bytes_per_line = word(12) as usize;
        let masks = (word(14), word(15), word(16));
        let colors = word(19) as usize;
        assert_eq!(bits_per_pixel, 32, "an xwd of a 24-bit screen");
        let start = header_size + colors * 12;
        let mut rgb = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let at = start + y * bytes_per_line + x * 4;
                let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
                let pixel = if byte_order == 0 {
                    u32::from_le_bytes(bytes)
                } else {
                    u32::from_be_bytes(bytes)
                };
                let channel = |mask: u32| ((pixel & mask) >> mask.trailing_zeros()) as u8;
                rgb.push([channel(masks.0), channel(masks.1), channel(masks.2)]);
            }
        }
        Some(Screen { width, height, rgb })
    }

    /// Pixels within 8 of `color` in every channel.
    fn count(&self, color: [u8; 3]) -> usize {
        self.rgb
            .iter()
            .filter(|pixel| (0..3).all(|c| pixel[c].abs_diff(color[c]) <= 8))
            .count()
    }

    /// As a PNG (8-bit RGB, no filter), for people to look at.
    fn save(&self, path: &Path) {
        use std::io::Write;
        let mut raw = Vec::with_capacity(self.height * (self.width * 3 + 1));
        for row in self.rgb.chunks(self.width) {
            raw.push(0);
            for pixel in row {
                raw.extend_from_slice(pixel);
            }
        }
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&raw).unwrap();
        let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        };
        let mut header = Vec::new();
        header.extend_from_slice(&u32::try_from(self.width).unwrap().to_be_bytes());
        header.extend_from_slice(&u32::try_from(self.height).unwrap().to_be_bytes());
        header.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &header);
        chunk(&mut png, b"IDAT", &zlib.finish().unwrap());
        chunk(&mut png, b"IEND", &[]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// The dashboard's accent (its buttons: `--accent` of /ui/plexichat.css), and the window's
/// toolbar of tabs (GTK's Adwaita background) with its selected tab.
const ACCENT: [u8; 3] = [0x2f, 0x6f, 0xb3];
const TOOLBAR: [u8; 3] = [246, 245, 244];
const SELECTED_TAB: [u8; 3] = [214, 209, 205];

#[test]
fn the_desktop_window_shows_the_test_dashboard_under_xvfb() {
    let window = build_window();
    let display_number = free_display();
    let display = format!(":{display_number}");
    let _xvfb = Killed(
        Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (apt-get install xvfb)"),
    );
    let dir = scratch("gui");
    let config = dir.join("plexichat.toml");
    std::fs::write(
        &config,
        format!("[data]\ndir = \"{}\"\n", dir.join("data").display()),
    )
    .unwrap();
    let started = Instant::now();
    while Screen::grab(&display).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Xvfb did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = dir.join("gui.log");
    let mut gui = Killed(
        Command::new(&window)
            .arg("--config")
            .arg(&config)
            .current_dir(&dir)
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            // No GPU and no user namespaces in a CI container.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("plexichat-gui starts"),
    );
    let screenshot = workspace_root().join("target/browser/gui.png");
    let started = Instant::now();
    loop {
        if let Some(status) = gui.0.try_wait().unwrap() {
            panic!(
                "plexichat-gui exited with {status}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let screen = Screen::grab(&display).expect("the screen can be read");
        let (accent, strip) = (
            screen.count(ACCENT),
            screen.count(TOOLBAR).min(screen.count(SELECTED_TAB) * 10),
        );
        if accent > 500 && strip > 5000 {
            screen.save(&screenshot);
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            screen.save(&screenshot);
            panic!(
                "after 90 s the screen shows no dashboard under its toolbar of tabs ({accent} accent and {strip} toolbar pixels; see {}):\n{}",
                screenshot.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn plexichat_gui_without_the_window_opens_the_system_browser_and_says_so() {
    // A binary built by the xtask has no `plexichat-gui` beside it; without a display the
    // browser would be used either way.
    let binary = crate::binary::build_app("all", &["--all"]);
    let dir = scratch("gui-browser");
    let opened = dir.join("opened");
    let browser = dir.join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let output = Command::new(&binary)
        .args([
            "gui",
            "--server",
            "http://127.0.0.1:9/",
            "--page",
            "my_awesome_plugin/dashboard",
        ])
        .current_dir(&dir)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("BROWSER", &browser)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "opening the system browser at http://127.0.0.1:9/plugins/my_awesome_plugin/dashboard/"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("no server answers"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap(),
        "http://127.0.0.1:9/plugins/my_awesome_plugin/dashboard/"
    );
    let output = Command::new(&binary)
        .args(["gui", "--page", "nonsense"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
