// The Awesome Dashboard: shows GET /api/v1/awesome/status, refreshed every 5 seconds, and
// performs actions with POST /api/v1/awesome/action. No inline script: the server's
// Content-Security-Policy allows scripts from this origin only.
"use strict";

const API = "/api/v1/awesome";

function show(id, value) {
  document.getElementById(id).textContent = value ?? "never";
}

// A time as people read it, by the shared page script (/ui/plexichat.js).
function showTime(id, iso) {
  const node = document.getElementById(id);
  if (!iso) {
    node.textContent = "never";
  } else if (window.PlexiChat) {
    node.replaceChildren(window.PlexiChat.time(iso));
  } else {
    node.textContent = iso;
  }
}

function render(status) {
  const stats = status.stats || {};
  show("status", status.enabled ? "Enabled: actions are accepted." : "Disabled: actions are refused.");
  show("actions-performed", String(stats.actions_performed ?? 0));
  showTime("last-action", stats.last_action);
  show("background-runs", String(stats.background_runs ?? 0));
  showTime("last-background-run", stats.last_background_run);
  showTime("started-at", stats.started_at);
  show("interval", `${status.config?.interval ?? "?"} s`);
}

async function refresh() {
  try {
    const response = await fetch(`${API}/status`, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(body.error || `HTTP ${response.status}`);
    }
    render(body);
  } catch (error) {
    const status = document.getElementById("status");
    status.textContent = `Cannot read the status: ${error.message}`;
    status.className = "error";
  }
}

async function performAction(event) {
  event.preventDefault();
  const button = document.getElementById("perform-action");
  const result = document.getElementById("result");
  button.disabled = true;
  try {
    const note = document.getElementById("note").value;
    const response = await fetch(`${API}/action`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ note }),
    });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(body.error || `HTTP ${response.status}`);
    }
    result.textContent = `${body.message} Actions performed: ${body.actions_performed}.`;
    result.className = "ok";
    show("actions-performed", String(body.actions_performed));
    showTime("last-action", body.timestamp);
  } catch (error) {
    result.textContent = `The action was not performed: ${error.message}`;
    result.className = "error";
  } finally {
    button.disabled = false;
  }
}

document.getElementById("action-form").addEventListener("submit", performAction);
refresh();
setInterval(refresh, 5000);
