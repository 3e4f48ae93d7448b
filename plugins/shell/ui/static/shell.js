// Keeps the plugin states on the shell current (every 5 seconds from /api/v1/plugins) and
// offers the admin actions after signing in. The page works without it. No inline script:
// the Content-Security-Policy allows this origin's scripts only.
//
// Signing in sends the admin token once; the server answers with an HttpOnly cookie (which no
// script can read) and a CSRF token, kept in this tab's sessionStorage so that the session
// survives a reload and carries to the Test Dashboard opened in the same tab. Only the
// server's own pages can read that storage: every plugin page without `ui:trusted` runs
// sandboxed, in an opaque origin with no access to it (see core/web/src/origins.rs).
"use strict";

(function () {
  const status = document.getElementById("refresh-status");
  const admin = document.getElementById("admin");
  const signInForm = document.getElementById("sign-in");
  const tokenInput = document.getElementById("admin-token");
  const actions = document.getElementById("admin-actions");
  const adminStatus = document.getElementById("admin-status");
  const session = window.PlexiChat.session;
  let csrf = null;

  function showState(name, state) {
    const card = document.querySelector(`[data-plugin="${CSS.escape(name)}"]`);
    const label = card && card.querySelector("[data-state]");
    if (label && label.textContent !== state) {
      label.textContent = state;
      label.className = `state state-${state}`;
    }
  }

  async function refresh() {
    try {
      const response = await fetch("/api/v1/plugins", { headers: { Accept: "application/json" } });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const body = await response.json();
      for (const plugin of body.plugins) {
        showState(plugin.name, plugin.state);
      }
      status.textContent = "";
    } catch (error) {
      status.textContent = `States could not be refreshed: ${error.message}`;
    }
  }

  function setSignedIn(token) {
    csrf = token;
    session.keep(token);
    signInForm.hidden = token !== null;
    actions.hidden = token === null;
    for (const element of document.querySelectorAll("[data-admin]")) {
      element.hidden = token === null;
    }
  }

  // An admin request with the session's CSRF token; answers with the JSON body, or throws
  // with the server's message.
  async function adminRequest(method, path) {
    const response = await session.request(method, path);
    if (response.status === 401) {
      setSignedIn(null);
      tokenInput.focus();
      throw new Error("the admin session has ended; sign in again");
    }
    const body = response.status === 204 ? {} : await response.json();
    if (!response.ok) {
      throw new Error(body.error || `HTTP ${response.status}`);
    }
    return body;
  }

  signInForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = tokenInput.value;
    tokenInput.value = "";
    try {
      setSignedIn(await session.signIn(token));
      adminStatus.textContent = "Signed in.";
    } catch (error) {
      adminStatus.textContent = `Signing in failed: ${error.message}`;
      tokenInput.focus();
    }
  });

  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await adminRequest("DELETE", "/api/v1/admin/session");
      adminStatus.textContent = "Signed out.";
    } catch (error) {
      adminStatus.textContent = error.message;
    }
    setSignedIn(null);
  });

  document.getElementById("reload-config").addEventListener("click", async () => {
    try {
      const body = await adminRequest("POST", "/api/v1/admin/config/reload");
      adminStatus.textContent = body.reloaded ? "Configuration reloaded." : "Nothing reloaded.";
      await refresh();
    } catch (error) {
      adminStatus.textContent = `Reload refused: ${error.message}`;
    }
  });

  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      const name = button.closest("[data-plugin]").dataset.plugin;
      const action = button.dataset.action;
      try {
        const body = await adminRequest(
          "POST",
          `/api/v1/admin/plugins/${encodeURIComponent(name)}/${action}`,
        );
        for (const change of body.changed || []) {
          showState(change.plugin, change.status.state);
        }
        showState(name, body.status.state);
        adminStatus.textContent = `${name}: ${body.status.state}.`;
      } catch (error) {
        adminStatus.textContent = `${name}: ${action} refused: ${error.message}`;
      }
    });
  }

  // A session this tab opened earlier: shown as signed in if the server still knows it (a
  // restart or the idle timeout ends it).
  async function resume() {
    const kept = session.csrf();
    setSignedIn(kept);
    if (kept === null) {
      return;
    }
    try {
      await adminRequest("GET", "/api/v1/admin/session");
    } catch (error) {
      adminStatus.textContent = "The earlier admin session has ended; sign in again.";
    }
  }

  admin.hidden = false;
  resume();
  setInterval(refresh, 5000);
})();
