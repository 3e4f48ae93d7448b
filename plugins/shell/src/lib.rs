//! `shell`: the web shell at `/`. Every compiled-in plugin with its type, state, version and
//! description, links to its UI pages and its docs, and links to the documentation and the
//! API; the states refresh live from `/api/v1/plugins`.
//!
//! The page is rendered by the server and works without JavaScript; `shell.js` keeps the
//! states current and offers the admin actions (disable, enable, reload) after signing in
//! with the admin token. Signing in yields an `HttpOnly` cookie and a CSRF token that the
//! script keeps in memory only, so neither other sites nor scripts of plugin pages can act
//! as the admin; reloading the page signs the browser out of the shell. No asset comes
//! from elsewhere, and the page has no inline script or style, so the `security` plugin's
//! strict policy applies to it unchanged.

use plexichat::info::PluginInfo;
use plexichat::prelude::*;
use plexichat::response::{Html, Redirect, escape_html as escape};

mod self_tests;

/// The web shell: the list of compiled-in plugins with links to their pages and docs, at /.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/",
    tags = ["web", "ui"],
    permissions = ["plugins:read", "ui:trusted"]
)]
#[derive(Default)]
pub struct Shell;

/// The shell's home page.
#[route(GET, "/")]
async fn home(context: PluginContext<Shell>) -> Html<String> {
    let view = context.plugins();
    let with_docs = view.descriptor("docs").is_some();
    let with_chat = view.descriptor("chat_web").is_some();
    let plugins: Vec<PluginInfo> = view.describe_all();
    let mut cards = String::new();
    for info in &plugins {
        cards.push_str(&card(info, with_docs));
    }
    let docs_link = if with_docs {
        "<li><a href=\"/docs\">Documentation</a>: PlexiChat's and every plugin's, with search</li>\n<li><a href=\"/docs/api\">API reference</a>: every route, its parameters and schemas</li>\n"
    } else {
        ""
    };
    Html(format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PlexiChat</title>
<link rel="icon" href="/plugins/shell/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/plexichat.css">
<link rel="stylesheet" href="/plugins/shell/static/shell.css">
<script src="/ui/plexichat.js" defer></script>
<script src="/plugins/shell/static/shell.js" defer></script>
</head>
<body>
<a class="skip" href="#content">Skip to the content</a>
<header class="px-bar">
<h1><a class="px-brand" href="/">PlexiChat</a></h1>
<nav aria-label="Sections">
<ul>
{chat_nav}{docs_nav}<li><a href="/api/v1/plugins">API: plugins (JSON)</a></li>
<li><a href="/openapi.json">OpenAPI</a></li>
<li><a href="/ready">Readiness</a></li>
</ul>
</nav>
<section id="admin" class="admin" aria-label="Administration" hidden>
<form id="sign-in">
<label for="admin-token">Admin token</label>
<input id="admin-token" name="token" type="password" autocomplete="off" required>
<button type="submit">Sign in</button>
</form>
<div id="admin-actions" hidden>
<span>Signed in as admin</span>
<a href="/settings">Settings</a>
<button type="button" id="reload-config">Reload configuration</button>
<button type="button" id="sign-out">Sign out</button>
</div>
<p id="admin-status" role="status" aria-live="polite"></p>
</section>
</header>
<main id="content" class="px-main">
{chat_card}<section aria-labelledby="plugins-heading">
<h2 id="plugins-heading">Plugins <span class="count">({count} compiled in, version {version})</span></h2>
<p id="refresh-status" class="muted" role="status" aria-live="polite"></p>
<ul class="plugins">
{cards}</ul>
</section>
<section aria-labelledby="more-heading">
<h2 id="more-heading">More</h2>
<ul>
{docs_link}<li><a href="/openapi.json">/openapi.json</a>: the OpenAPI 3.1 document of every route</li>
<li><a href="/api/v1/plugins">/api/v1/plugins</a>: the same list as JSON, with routes, events, commands and counters</li>
<li><a href="/health">/health</a> and <a href="/ready">/ready</a>: liveness and readiness</li>
</ul>
</section>
</main>
</body>
</html>
"##,
        chat_nav = if with_chat {
            "<li><a href=\"/plugins/chat_web/chat/\">Chat</a></li>\n"
        } else {
            ""
        },
        chat_card = if with_chat {
            "<section class=\"card\" aria-labelledby=\"chat-heading\">\n<h2 id=\"chat-heading\">Chat</h2>\n<p>Register or sign in, then talk in channels and direct messages: <a href=\"/plugins/chat_web/chat/\">open the chat</a>.</p>\n</section>\n"
        } else {
            ""
        },
        docs_nav = if with_docs {
            "<li><a href=\"/docs\">Docs</a></li>\n<li><a href=\"/docs/api\">API reference</a></li>\n"
        } else {
            ""
        },
        count = plugins.len(),
        version = escape(plexichat::VERSION),
    ))
}

/// The settings page: every plugin's settings as a form made from its configuration schema
/// (types, bounds, choices, descriptions; secrets masked), for the admin. The form is built by
/// `settings.js` from `GET /api/v1/admin/settings`; saving applies through the configuration
/// reload and keeps the change in `<data>/settings.toml`.
#[route(GET, "/settings")]
async fn settings_page() -> Html<&'static str> {
    Html(SETTINGS_PAGE)
}

const SETTINGS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Settings · PlexiChat</title>
<link rel="icon" href="/plugins/shell/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/plexichat.css">
<link rel="stylesheet" href="/plugins/shell/static/shell.css">
<script src="/ui/plexichat.js" defer></script>
<script src="/plugins/shell/static/settings.js" defer></script>
</head>
<body>
<a class="skip" href="#content">Skip to the content</a>
<header class="px-bar" data-px-bar><a class="px-brand" href="/">PlexiChat</a></header>
<main id="content" class="px-main">
<h1>Settings</h1>
<p class="muted">Each plugin's settings, from its configuration schema. Saving checks them as
<code>plexichat config check</code> does, applies them at once through the configuration
reload, and keeps them in <code id="settings-file">data/settings.toml</code>, which is read over
<code>plexichat.toml</code>.</p>
<noscript><p>This page needs JavaScript; the same is at <code>GET /api/v1/admin/settings</code>.</p></noscript>
<form id="sign-in" class="admin" hidden>
<label for="admin-token">Admin token</label>
<input id="admin-token" name="token" type="password" autocomplete="off" required>
<button type="submit">Sign in</button>
</form>
<p id="settings-status" role="status" aria-live="polite"></p>
<div id="plugins"></div>
</main>
</body>
</html>
"##;

/// `/favicon.ico`, which browsers ask for on pages that name no icon (plugin pages may not):
/// the shell's icon instead of a 404 in every page's console.
#[route(GET, "/favicon.ico")]
async fn favicon() -> Redirect {
    Redirect::permanent("/plugins/shell/static/icon.svg")
}

/// One plugin as the shell lists it.
fn card(info: &PluginInfo, with_docs: bool) -> String {
    let manifest = info.manifest;
    let name = escape(manifest.name);
    let state = info.status.name();
    let reason = info
        .status
        .reason(manifest.name)
        .map(|reason| format!("<p class=\"reason\">{}</p>", escape(&reason)))
        .unwrap_or_default();
    let mut links = String::new();
    for page in &info.pages {
        links.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            escape(&page.url),
            escape(page.title)
        ));
    }
    if with_docs && !info.doc_files.is_empty() {
        links.push_str(&format!(
            "<li><a href=\"/docs/{name}\">Docs<span class=\"visually-hidden\"> of {name}</span></a></li>"
        ));
    }
    links.push_str(&format!(
        "<li><a href=\"/api/v1/plugins/{name}\">Details<span class=\"visually-hidden\"> of {name}</span> (JSON)</a></li>"
    ));
    format!(
        "<li class=\"plugin\" data-plugin=\"{name}\">\n<h3>{name} <span class=\"version\">{version}</span></h3>\n<p class=\"meta\"><span class=\"type\">{kind}</span> <span class=\"state state-{state}\" data-state>{state}</span></p>\n{reason}<p>{description}</p>\n<ul class=\"links\">{links}</ul>\n<p class=\"plugin-actions\" data-admin hidden><button type=\"button\" data-action=\"disable\">Disable<span class=\"visually-hidden\"> {name}</span></button> <button type=\"button\" data-action=\"enable\">Enable<span class=\"visually-hidden\"> {name}</span></button></p>\n</li>\n",
        version = escape(manifest.version),
        kind = escape(manifest.kind.as_str()),
        description = escape(manifest.description),
    )
}
