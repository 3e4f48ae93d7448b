//! `plexichat gui`: the desktop window when there is one, else the system browser.
//!
//! The window is `plexichat-gui`, a separate binary built with the `gui` feature (a WebView
//! links many shared libraries; the static server carries none of them). When it sits beside
//! this binary and a display is there, `gui` hands over to it; otherwise it opens the server's
//! page in the system browser (`$BROWSER`, else `xdg-open`) and says why, or prints the
//! address to open when there is no browser either.

use std::process::Command;

use plexichat::config::Config;

use crate::cli::UsageError;

/// The page `plexichat gui` shows: the test dashboard, or `--page <plugin>/<page>`.
fn page_path(page: Option<&str>) -> Result<String, UsageError> {
    let Some(page) = page else {
        return Ok("/plugins/test_manager/dashboard/".to_string());
    };
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    match page.split_once('/') {
        Some((plugin, name)) if valid(plugin) && valid(name) => {
            Ok(format!("/plugins/{plugin}/{name}/"))
        }
        _ => Err(UsageError(format!(
            "--page {page}: write `<plugin>/<page>`, e.g. `test_manager/dashboard` (see `plexichat plugins info`)"
        ))),
    }
}

pub(crate) fn open(
    server: Option<url::Url>,
    page: Option<String>,
    config: &Config,
) -> anyhow::Result<()> {
    let path = page_path(page.as_deref())?;
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let window = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("plexichat-gui")))
        .filter(|path| path.is_file());
    if let (true, Some(window)) = (display, &window) {
        let mut command = Command::new(window);
        if let Some(server) = &server {
            command.arg("--server").arg(server.as_str());
        }
        if let Some(page) = &page {
            command.arg("--page").arg(page);
        }
        let status = command.status()?;
        anyhow::ensure!(status.success(), "plexichat-gui exited with {status}");
        return Ok(());
    }
    let base = server.map_or_else(
        || format!("http://{}", config.server.bind),
        |url| url.as_str().trim_end_matches('/').to_string(),
    );
    let url = format!("{base}{path}");
    let why = match (window.is_some(), display) {
        (false, _) => {
            "this build has no desktop window (build `plexichat-gui` with the `gui` feature)"
        }
        (true, false) => "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)",
        (true, true) => unreachable!("handed over to the window above"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_plugin_slash_page() {
        assert_eq!(page_path(None).unwrap(), "/plugins/test_manager/dashboard/");
        assert_eq!(
            page_path(Some("my_awesome_plugin/dashboard")).unwrap(),
            "/plugins/my_awesome_plugin/dashboard/"
        );
        for bad in ["dashboard", "a/", "/b", "a/b/c", "A/b", "a/../b"] {
            assert!(page_path(Some(bad)).is_err(), "{bad}");
        }
    }
}
