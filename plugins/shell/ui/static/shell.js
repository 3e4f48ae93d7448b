// Keeps the plugin states on the shell current: every 5 seconds from /api/v1/plugins. The
// page works without it. No inline script: the Content-Security-Policy allows this origin's
// scripts only.
"use strict";

(function () {
  const status = document.getElementById("refresh-status");

  async function refresh() {
    try {
      const response = await fetch("/api/v1/plugins", { headers: { Accept: "application/json" } });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const body = await response.json();
      for (const plugin of body.plugins) {
        const card = document.querySelector(`[data-plugin="${CSS.escape(plugin.name)}"]`);
        const state = card && card.querySelector("[data-state]");
        if (state && state.textContent !== plugin.state) {
          state.textContent = plugin.state;
          state.className = `state state-${plugin.state}`;
        }
      }
      status.textContent = "";
    } catch (error) {
      status.textContent = `States could not be refreshed: ${error.message}`;
    }
  }

  setInterval(refresh, 5000);
})();
