//! `plexichat gui`: the desktop window when there is one, else the system browser.
//!
//! The window is `plexichat-gui`, a separate binary built with the `gui` feature (a WebView
//! links many shared libraries; the static server carries none of them). When it sits beside
//! this binary and a display is there, `gui` hands over to it; otherwise it opens the server's
//! page in the system browser (`$BROWSER`, else `xdg-open`) and says why, or prints the
//! address to open when there is no browser either.

use std::process::Command;

use plexichat_kernel::config::Config;

use crate::usage::UsageError;

pub(crate) fn open(
    server: Option<url::Url>,
    page: Option<String>,
    config: &Config,
    config_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let path = crate::page::page_path(page.as_deref()).map_err(UsageError)?;
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let window = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("plexichat-gui")))
        .filter(|path| path.is_file());
    let configured = format!("http://{}", config.server.bind);
    if let (true, Some(window)) = (display, &window) {
        let mut command = Command::new(window);
        // The server named, or the configured one when it answers; else the window starts
        // its own with the same configuration.
        match &server {
            Some(server) => {
                command.arg("--server").arg(server.as_str());
            }
            None if answers(&configured) => {
                command.arg("--server").arg(&configured);
            }
            None => {
                if let Some(file) = config_file {
                    command.arg("--config").arg(file);
                }
            }
        }
        if let Some(page) = &page {
            command.arg("--page").arg(page);
        }
        let status = command.status()?;
        anyhow::ensure!(status.success(), "plexichat-gui exited with {status}");
        return Ok(());
    }
    let base = server.map_or(configured, |url| {
        url.as_str().trim_end_matches('/').to_string()
    });
    let url = format!("{base}{path}");
    let why = if window.is_none() {
        "this build has no desktop window (build `plexichat-gui` with the `gui` feature)"
    } else {
        "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    };
    eprintln!("{why}: opening the system browser at {url}");
    if !answers(&base) {
        eprintln!("note: no server answers at {base} yet; start one with `plexichat serve`");
    }
    if launch(&url) {
        Ok(())
    } else {
        println!("{url}");
        anyhow::bail!(
            "no browser to open ($BROWSER is unset and xdg-open is missing); open {url} yourself"
        )
    }
}

/// Whether something accepts connections at `base` (an `http://host:port` address).
fn answers(base: &str) -> bool {
    let Some(authority) = base.strip_prefix("http://") else {
        return true;
    };
    use std::net::ToSocketAddrs;
    authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))
                .is_ok()
        })
}

/// Opens `url` with `$BROWSER` (the convention of Debian's `sensible-browser`), else with
/// `xdg-open`; whether one of them started.
fn launch(url: &str) -> bool {
    let browsers = std::env::var("BROWSER")
        .ok()
        .filter(|browser| !browser.trim().is_empty())
        .into_iter()
        .chain(std::iter::once("xdg-open".to_string()));
    for browser in browsers {
        let mut words = browser.split_whitespace();
        let Some(program) = words.next() else {
            continue;
        };
        if Command::new(program)
            .args(words)
            .arg(url)
            .status()
            .is_ok_and(|status| status.success())
        {
            return true;
        }
    }
    false
}
