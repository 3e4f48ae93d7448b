// PlexiChat's shared page script, served by core at /ui/plexichat.js.
//
// - Fills an empty `<header class="px-bar" data-px-bar>` with the brand and the server's
//   sections (the plugins list, and the chat, the docs, the API reference and the Test Dashboard when
//   those plugins are compiled in), from /api/v1/plugins.
// - Shows times as people read them: every `<time datetime="…">` (and every one added later)
//   reads as a local date and time with how long ago or how soon ("in 3 h"), the ISO value on
//   hover; `PlexiChat.time(iso)` makes such an element for a page's own script.
// - `PlexiChat.session`: the tab's admin session, shared by the shell, the settings page and
//   the Test Dashboard (one key, one sign-in).
//
// It works in sandboxed plugin pages too, where there is no session to read.
"use strict";

(function () {
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
  const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const units = [
    ["year", 365 * 24 * 3600],
    ["month", 30 * 24 * 3600],
    ["day", 24 * 3600],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
  ];

  function ago(date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size || unit === "second") {
        return relative.format(Math.round(seconds / size), unit);
      }
    }
    return "";
  }

  function render(node) {
    const iso = node.getAttribute("datetime");
    const date = iso ? new Date(iso) : null;
    if (!date || Number.isNaN(date.getTime())) return;
    const text = `${absolute.format(date)} (${ago(date)})`;
    if (node.textContent !== text) node.textContent = text;
    if (node.title !== iso) node.title = iso;
  }

  function renderAll(root) {
    if (root.matches && root.matches("time[datetime]")) render(root);
    if (root.querySelectorAll) root.querySelectorAll("time[datetime]").forEach(render);
  }

  // A <time> for `iso` (or a dash for none), rendered at once.
  function time(iso, fallback = "–") {
    if (!iso) return document.createTextNode(fallback);
    const node = document.createElement("time");
    node.setAttribute("datetime", iso);
    render(node);
    return node;
  }

  async function bar(header) {
    const here = location.pathname;
    const links = [["/", "Plugins"]];
    try {
      const response = await fetch("/api/v1/plugins", { headers: { Accept: "application/json" } });
      const names = new Set((await response.json()).plugins.map((plugin) => plugin.name));
      if (names.has("chat_web")) links.push(["/plugins/chat_web/chat/", "Chat"]);
      if (names.has("docs")) links.push(["/docs", "Docs"], ["/docs/api", "API"]);
      if (names.has("test_manager")) links.push(["/plugins/test_manager/dashboard/", "Tests"]);
    } catch (_) {
      // The brand and the plugins list are enough.
    }
    const brand = document.createElement("a");
    brand.className = "px-brand";
    brand.href = "/";
    brand.textContent = "PlexiChat";
    const nav = document.createElement("nav");
    nav.setAttribute("aria-label", "PlexiChat");
    const list = document.createElement("ul");
    for (const [href, label] of links) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = href;
      link.textContent = label;
      const current = href === "/" ? here === "/" : here.startsWith(href);
      if (current) link.setAttribute("aria-current", "page");
      item.append(link);
      list.append(item);
    }
    nav.append(list);
    header.replaceChildren(brand, nav);
  }

  function start() {
    document.querySelectorAll("header[data-px-bar]").forEach((header) => {
      bar(header);
    });
    renderAll(document.body);
    new MutationObserver((changes) => {
      for (const change of changes) change.addedNodes.forEach(renderAll);
    }).observe(document.body, { childList: true, subtree: true });
    setInterval(() => renderAll(document.body), 30000);
  }

  // The admin session of this tab, for the server's own (`ui:trusted`) pages: its CSRF token
  // in the tab's sessionStorage (a sandboxed plugin page cannot read it: there every call
  // finds no session), signing in with the admin token, and admin requests.
  const CSRF_KEY = "plexichat.admin.csrf";
  const session = Object.freeze({
    // The CSRF token of the tab's session, or null.
    csrf() {
      try {
        return sessionStorage.getItem(CSRF_KEY);
      } catch (_) {
        return null;
      }
    },
    // Keeps `token` for the tab (null forgets it).
    keep(token) {
      try {
        if (token === null) sessionStorage.removeItem(CSRF_KEY);
        else sessionStorage.setItem(CSRF_KEY, token);
      } catch (_) {
        // A sandboxed page has no session to keep.
      }
    },
    // Signs the tab in with the admin token; the CSRF token, or an error with the server's
    // reason.
    async signIn(token) {
      const response = await fetch("/api/v1/admin/session", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ token }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      session.keep(body.csrf_token);
      return body.csrf_token;
    },
    // An admin request with the session's CSRF token: the response, whatever its status.
    request(method, path, body) {
      const headers = { Accept: "application/json", "X-CSRF-Token": session.csrf() || "" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      return fetch(path, {
        method,
        credentials: "same-origin",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
  });

  window.PlexiChat = Object.freeze({ time, session });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
