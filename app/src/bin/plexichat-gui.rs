//! `plexichat-gui`: the desktop window (the seed's "GUI integration"). A native window with a
//! WebView (wry on WebKitGTK) showing the server's pages, with a tab strip for the Test
//! Dashboard, the home page and every plugin's UI pages; `--page <plugin>/<page>` opens one
//! page in a window of its own. It connects to a running server (`--server URL`) or starts
//! one in-process on a free loopback port with the compiled-in plugins.
//!
//! A separate binary behind the `gui` feature: a WebView links many shared libraries and must
//! stay out of the static server. Without a display it says so and exits with status 1;
//! `plexichat gui` then opens the system browser instead.

#[path = "../page.rs"]
mod page;
#[path = "../plugins.rs"]
mod plugins;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use plexichat::Registry;
use plexichat_kernel::config::{Config, ConfigFile};
use plexichat_kernel::runtime::Runtime;
use plexichat_web as server;
use tao::event::{Event, WindowEvent};
use tao::event_loop::{ControlFlow, EventLoop};
use tao::window::WindowBuilder;
use wry::WebViewBuilder;

/// The desktop window of a PlexiChat server.
#[derive(Debug, Parser)]
#[command(name = "plexichat-gui", version)]
struct Gui {
    /// A running server to show [default: start one in-process with this binary's plugins].
    #[arg(long, value_name = "URL")]
    server: Option<url::Url>,
    /// Open only this page, `<plugin>/<page>` (as `plexichat plugins info` lists it), in a
    /// window of its own.
    #[arg(long, value_name = "PLUGIN/PAGE")]
    page: Option<String>,
    /// Configuration of the in-process server [default: plexichat.toml if it exists].
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The tab strip, injected into every page of the main window: a bar of links to the home page,
/// the Test Dashboard and every plugin's UI pages (read from `/api/v1/plugins`), the current
/// one marked. A user script, so the pages' Content-Security-Policy does not apply to it; it
/// styles through the CSSOM, which that policy allows.
const TAB_STRIP: &str = r##"
(function () {
  if (window.top !== window || document.getElementById("plexichat-gui-tabs")) return;
  function build() {
    fetch("/api/v1/plugins", { headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        var tabs = [{ title: "Home", url: "/" }];
        body.plugins.forEach(function (plugin) {
          (plugin.pages || []).forEach(function (page) {
            var tab = { title: page.title, url: page.url };
            if (plugin.name === "test_manager") tabs.splice(1, 0, tab); else tabs.push(tab);
          });
        });
        var bar = document.createElement("nav");
        bar.id = "plexichat-gui-tabs";
        bar.setAttribute("aria-label", "Tabs");
        var style = bar.style;
        style.display = "flex"; style.gap = "0.25rem"; style.flexWrap = "wrap";
        style.padding = "0.4rem"; style.background = "#20242b"; style.font = "14px system-ui, sans-serif";
        tabs.forEach(function (tab) {
          var link = document.createElement("a");
          link.href = tab.url;
          link.textContent = tab.title;
          var current = location.pathname === tab.url;
          if (current) link.setAttribute("aria-current", "page");
          link.style.color = current ? "#20242b" : "#e8eaed";
          link.style.background = current ? "#e8eaed" : "transparent";
          link.style.padding = "0.3rem 0.8rem"; link.style.borderRadius = "0.3rem";
          link.style.textDecoration = "none";
          bar.appendChild(link);
        });
        document.body.insertBefore(bar, document.body.firstChild);
      })
      .catch(function () {});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();
"##;

fn main() -> ExitCode {
    let gui = Gui::parse();
    match run(gui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(gui: Gui) -> anyhow::Result<()> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        anyhow::bail!(
            "no display (neither DISPLAY nor WAYLAND_DISPLAY is set); `plexichat gui` opens the system browser instead"
        );
    }
    let page = match &gui.page {
        Some(page) => Some(page::page_path(Some(page)).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let (base, _server) = match &gui.server {
        Some(url) => (url.as_str().trim_end_matches('/').to_string(), None),
        None => {
            let (addr, server) = start_server(gui.config.as_deref())?;
            (format!("http://{addr}"), Some(server))
        }
    };
    let url = format!(
        "{base}{}",
        page.as_deref()
            .unwrap_or("/plugins/test_manager/dashboard/")
    );
    eprintln!("plexichat-gui: showing {url}");

    let event_loop = EventLoop::new();
    let window = WindowBuilder::new()
        .with_title(match &gui.page {
            Some(page) => format!("PlexiChat: {page}"),
            None => "PlexiChat".to_string(),
        })
        .with_inner_size(tao::dpi::LogicalSize::new(1280.0, 900.0))
        .build(&event_loop)
        .context("cannot open a window")?;
    let mut builder = WebViewBuilder::new().with_url(&url);
    if page.is_none() {
        builder = builder.with_initialization_script(TAB_STRIP);
    }
    #[cfg(target_os = "linux")]
    let webview = {
        use tao::platform::unix::WindowExtUnix;
        use wry::WebViewBuilderExtUnix;
        let vbox = window
            .default_vbox()
            .context("the window has no GTK box to put the page in")?;
        builder.build_gtk(vbox)
    };
    #[cfg(not(target_os = "linux"))]
    let webview = builder.build(&window);
    let webview = webview.context("cannot create the WebView")?;

    event_loop.run(move |event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        // Owned by the loop, which never returns: the page lives as long as the window.
        let _ = &webview;
        if let Event::WindowEvent {
            event: WindowEvent::CloseRequested,
            ..
        } = event
        {
            *control_flow = ControlFlow::Exit;
        }
    })
}

/// A server with this binary's plugins on a free loopback port, on its own thread; it stops
/// when the process exits.
fn start_server(
    config: Option<&std::path::Path>,
) -> anyhow::Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let registry = Registry::linked().context("the compiled-in plugins cannot run together")?;
    registry.expect_exactly(plugins::ENABLED)?;
    let file = ConfigFile::locate(config);
    let config =
        Config::load(&file, &[], &[], &registry).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    plexichat_kernel::storage::data_dir::create(&config.data.dir)?;
    // Shared with other servers on this folder, exclusive for a restore, like `serve`.
    let lock =
        plexichat_kernel::storage::data_dir::lock(&config.data.dir, false)?.map_err(|()| {
            anyhow::anyhow!(
                "a restore is replacing the data in {}; open the window when it is done",
                config.data.dir.display()
            )
        })?;
    let mut options = server::ServerOptions::from(&config.server);
    if options.admin_token.is_none() {
        options.admin_token =
            Some(plexichat_kernel::storage::data_dir::ensure_token(&config.data.dir)?.0);
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listener = tokio.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let storage = tokio
        .block_on(plexichat_kernel::storage::Storage::open(&config.data))
        .context("cannot open the database")?;
    let runtime = Runtime::with_storage(registry, config, None, storage);
    tokio
        .block_on(runtime.migrate())
        .context("refusing to start")?;
    plexichat::tests::Runner::of(&runtime).set_server_options(&options);
    let thread = std::thread::Builder::new()
        .name("plexichat-server".into())
        .spawn(move || {
            let _lock = lock;
            let served = tokio.block_on(server::serve(
                listener,
                runtime,
                options,
                std::future::pending::<()>(),
            ));
            if let Err(error) = served {
                eprintln!("plexichat-gui: the server stopped: {error}");
            }
        })?;
    Ok((addr, thread))
}
