//! `plexichat-gui`: the desktop window (the seed's "GUI integration"). A native window with a
//! toolbar (back, forward, reload, and a tab for the Test Dashboard, the home page and every
//! plugin's UI page) over one WebView (wry on WebKitGTK) per tab, so a tab keeps its state
//! while another is shown; `--page <plugin>/<page>` opens one page in a window of its own. It connects to a running server (`--server URL`) or starts
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

/// One tab of the main window: its title and the path it opens.
struct Tab {
    title: String,
    path: String,
}

/// The main window's tabs: the Test Dashboard first (what the window opens on), the home
/// page, then every UI page of this binary's plugins. A server given with `--server` is
/// expected to run the same plugins; a page it lacks shows its 404 page.
fn tabs(registry: &Registry) -> Vec<Tab> {
    let mut tabs = vec![Tab {
        title: "Home".to_string(),
        path: "/".to_string(),
    }];
    for plugin in registry.plugins() {
        for page in plugin.ui_pages {
            let tab = Tab {
                title: page.title.to_string(),
                path: format!("/plugins/{}/{}/", plugin.name, page.name),
            };
            if plugin.name == "test_manager" {
                tabs.insert(0, tab);
            } else {
                tabs.push(tab);
            }
        }
    }
    tabs
}

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
    // Whatever shows the pages lives as long as the window, in the loop, which never returns.
    let keep: Box<dyn std::any::Any> = match page {
        Some(_) => Box::new(single(&window, &url)?),
        None => {
            let registry =
                Registry::linked().context("the compiled-in plugins cannot run together")?;
            tabbed(&window, &base, &tabs(&registry))?
        }
    };
    event_loop.run(move |event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        let _ = &keep;
        if let Event::WindowEvent {
            event: WindowEvent::CloseRequested,
            ..
        } = event
        {
            *control_flow = ControlFlow::Exit;
        }
    })
}

/// `--page`: one page, one WebView, as before.
fn single(window: &tao::window::Window, url: &str) -> anyhow::Result<wry::WebView> {
    let builder = WebViewBuilder::new().with_url(url);
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
    let webview = builder.build(window);
    webview.context("cannot create the WebView")
}

/// The main window: a toolbar (back, forward, reload, and a switcher of tabs) over a stack of
/// WebViews, one per tab, so that a tab keeps its page, its scroll and its state while
/// another is shown. Back, forward and reload act on the tab in view.
#[cfg(target_os = "linux")]
fn tabbed(
    window: &tao::window::Window,
    base: &str,
    tabs: &[Tab],
) -> anyhow::Result<Box<dyn std::any::Any>> {
    use std::rc::Rc;

    use gtk::prelude::*;
    use tao::platform::unix::WindowExtUnix;
    use wry::WebViewBuilderExtUnix;

    let vbox = window
        .default_vbox()
        .context("the window has no GTK box to put the pages in")?;
    let toolbar = gtk::Box::new(gtk::Orientation::Horizontal, 4);
    toolbar.set_margin_top(4);
    toolbar.set_margin_bottom(4);
    toolbar.set_margin_start(4);
    toolbar.set_margin_end(4);
    let button = |icon: &str, label: &str| {
        let button = gtk::Button::from_icon_name(Some(icon), gtk::IconSize::Button);
        button.set_tooltip_text(Some(label));
        // What a screen reader says.
        if let Some(accessible) = button.accessible() {
            accessible.set_name(label);
        }
        button
    };
    let back = button("go-previous", "Back");
    let forward = button("go-next", "Forward");
    let reload = button("view-refresh", "Reload");
    let stack = gtk::Stack::new();
    let switcher = gtk::StackSwitcher::new();
    switcher.set_stack(Some(&stack));
    toolbar.pack_start(&back, false, false, 0);
    toolbar.pack_start(&forward, false, false, 0);
    toolbar.pack_start(&reload, false, false, 0);
    toolbar.pack_start(&switcher, false, false, 8);
    vbox.pack_start(&toolbar, false, false, 0);
    vbox.pack_start(&stack, true, true, 0);

    let mut webviews = Vec::new();
    for (index, tab) in tabs.iter().enumerate() {
        let page = gtk::Box::new(gtk::Orientation::Vertical, 0);
        stack.add_titled(&page, &index.to_string(), &tab.title);
        let webview = WebViewBuilder::new()
            .with_url(format!("{base}{}", tab.path))
            .build_gtk(&page)
            .context("cannot create a WebView")?;
        webviews.push(webview);
    }
    vbox.show_all();
    let webviews = Rc::new(webviews);
    let in_view = {
        let stack = stack.clone();
        let webviews = Rc::clone(&webviews);
        move |act: &dyn Fn(&wry::WebView)| {
            let index = stack
                .visible_child_name()
                .and_then(|name| name.parse::<usize>().ok())
                .unwrap_or(0);
            if let Some(webview) = webviews.get(index) {
                act(webview);
            }
        }
    };
    let in_view = Rc::new(in_view);
    {
        let in_view = Rc::clone(&in_view);
        back.connect_clicked(move |_| {
            in_view(&|webview| drop(webview.evaluate_script("history.back()")));
        });
    }
    {
        let in_view = Rc::clone(&in_view);
        forward.connect_clicked(move |_| {
            in_view(&|webview| drop(webview.evaluate_script("history.forward()")));
        });
    }
    reload.connect_clicked(move |_| {
        in_view(&|webview| drop(webview.reload()));
    });
    Ok(Box::new(webviews))
}

/// Elsewhere than Linux, the window has no GTK box for a stack: one WebView on the
/// dashboard, with the pages' own links.
#[cfg(not(target_os = "linux"))]
fn tabbed(
    window: &tao::window::Window,
    base: &str,
    tabs: &[Tab],
) -> anyhow::Result<Box<dyn std::any::Any>> {
    let url = format!(
        "{base}{}",
        tabs.first().map_or("/", |tab| tab.path.as_str())
    );
    Ok(Box::new(single(window, &url)?))
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
