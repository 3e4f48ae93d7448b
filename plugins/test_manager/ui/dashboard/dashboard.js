// The test dashboard: statistics, plugins, tests, recent results and schedules from the test
// manager's API, kept current by Server-Sent Events (`/tests/live-updates`), with a
// 30-second refresh while the live connection is down. `?plugin=NAME` is one plugin's page.
//
// Running tests and changing schedules needs the admin: signing in (here or on the shell, in
// the same tab) sends the token once and gets an HttpOnly cookie plus a CSRF token kept in
// the tab's sessionStorage, which only the server's own pages can read (plugin pages run
// sandboxed, in an origin of their own), so a reload keeps the session. No inline script: the
// Content-Security-Policy allows this origin's scripts only. Data is written with
// textContent, never as HTML.
"use strict";

(function () {
  const plugin = new URLSearchParams(location.search).get("plugin");
  const $ = (id) => document.getElementById(id);
  const session = window.PlexiChat.session;
  let csrf = null;
  let discovered = [];
  let fallback = null;
  let refreshTimer = null;

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // A time as people read it (local, with how long ago or how soon; ISO on hover), by the
  // shared page script; the ISO text if that script did not load.
  function when(iso) {
    if (window.PlexiChat) return window.PlexiChat.time(iso);
    const node = element("time", iso);
    node.dateTime = iso;
    return node;
  }

  function local(iso) {
    return new Date(iso).toLocaleString();
  }

  // Each cell carries its column's name, which narrow screens show beside it.
  function labelCells(table) {
    const names = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
    for (const row of table.tBodies[0].rows) {
      [...row.cells].forEach((td, index) => {
        if (names[index]) td.dataset.label = names[index];
      });
    }
  }

  function cell(row, text, className) {
    const td = element("td", text, className);
    row.append(td);
    return td;
  }

  function percent(rate) {
    return rate === null || rate === undefined ? "–" : `${Math.round(rate * 1000) / 10} %`;
  }

  function status(text) {
    return element("span", text, `status status-${text}`);
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  // An admin request with the session's CSRF token; the JSON answer, or the server's message.
  async function admin(method, path, body) {
    const response = await session.request(method, path, body);
    if (response.status === 401) {
      setSignedIn(null);
      throw new Error("the admin session has ended; sign in again");
    }
    const answer = response.status === 204 ? {} : await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    return answer;
  }

  function say(text, isError) {
    const line = $("admin-status");
    line.textContent = text;
    line.className = isError ? "error" : "";
  }

  function setSignedIn(token) {
    csrf = token;
    session.keep(token);
    $("sign-in").hidden = token !== null;
    $("signed-in").hidden = token === null;
    for (const node of document.querySelectorAll("[data-admin]")) node.hidden = token === null;
  }

  // --- Loading -------------------------------------------------------------------------

  async function loadDiscovery() {
    const body = await fetch("/tests/discover", { method: "POST", headers: { Accept: "application/json" } }).then((r) => r.json());
    discovered = body.plugins;
    const select = $("schedule-plugin");
    const chosen = select.value || plugin;
    select.replaceChildren(...discovered.map((p) => new Option(p.plugin_name, p.plugin_name)));
    if (chosen) select.value = chosen;
    fillTests();
    return body;
  }

  function fillTests() {
    const entry = discovered.find((p) => p.plugin_name === $("schedule-plugin").value);
    const options = [new Option("All of its tests", "")];
    for (const test of entry ? entry.tests : []) options.push(new Option(test.name, test.name));
    $("schedule-test").replaceChildren(...options);
  }

  async function loadStatistics() {
    const stats = await getJson("/tests/statistics");
    const scope = plugin ? stats.plugins.find((p) => p.plugin_name === plugin) || {} : stats.overall;
    const put = (name, value) => {
      const node = document.querySelector(`[data-stat="${name}"]`);
      if (node) node.textContent = value;
    };
    put("runs", scope.runs ?? 0);
    put("success_rate", percent(scope.success_rate));
    put("passed", scope.passed ?? 0);
    put("failing", (scope.failed ?? 0) + (scope.error ?? 0) + (scope.timeout ?? 0));
    put("flaky", scope.flaky ?? 0);
    put("durations", scope.duration_p50_ms === undefined || scope.duration_p50_ms === null
      ? "–" : `${scope.duration_p50_ms} / ${scope.duration_p95_ms} ms`);
    renderPlugins(stats);
    renderTests(stats);
  }

  function renderPlugins(stats) {
    const rows = discovered
      .filter((p) => !plugin || p.plugin_name === plugin)
      .map((p) => {
        const summary = stats.plugins.find((s) => s.plugin_name === p.plugin_name) || {};
        const row = element("tr");
        row.dataset.plugin = p.plugin_name;
        const check = element("input");
        check.type = "checkbox";
        check.value = p.plugin_name;
        check.setAttribute("aria-label", `Check ${p.plugin_name}`);
        check.dataset.admin = "";
        check.hidden = csrf === null;
        cell(row).append(check);
        const name = cell(row);
        const link = element("a", p.plugin_name);
        link.href = `?plugin=${encodeURIComponent(p.plugin_name)}`;
        name.append(link);
        cell(row, p.tests.length, "number");
        cell(row, percent(summary.success_rate), "number");
        cell(row, summary.failing_tests ?? 0, "number");
        const run = element("button", "Run tests");
        run.type = "button";
        run.dataset.admin = "";
        run.hidden = csrf === null;
        run.setAttribute("aria-label", `Run tests of ${p.plugin_name}`);
        run.addEventListener("click", () => runTests(run, { plugin_name: p.plugin_name }));
        cell(row).append(run);
        return row;
      });
    $("plugins").tBodies[0].replaceChildren(...rows);
    labelCells($("plugins"));
  }

  function renderTests(stats) {
    const rows = [];
    for (const p of discovered) {
      if (plugin && p.plugin_name !== plugin) continue;
      for (const test of p.tests) {
        const summary = stats.tests.find((s) => s.plugin_name === p.plugin_name && s.test_name === test.name);
        const row = element("tr");
        row.dataset.test = `${p.plugin_name}::${test.name}`;
        const name = cell(row);
        name.append(element("strong", `${p.plugin_name}::${test.name}`));
        if (test.description) name.append(element("div", test.description.split("\n\n")[0]));
        cell(row, test.category);
        cell(row).append(summary ? status(summary.last_status) : element("span", "never run"));
        cell(row, percent(summary ? summary.success_rate : null), "number");
        cell(row, summary && summary.duration_p50_ms !== null && summary.duration_p50_ms !== undefined ? `${summary.duration_p50_ms} ms` : "–", "number");
        const run = element("button", "Run");
        run.type = "button";
        run.dataset.admin = "";
        run.hidden = csrf === null;
        run.setAttribute("aria-label", `Run ${p.plugin_name}::${test.name}`);
        run.addEventListener("click", () => runTests(run, { plugin_name: p.plugin_name, test_name: test.name }));
        cell(row).append(run);
        rows.push(row);
      }
    }
    $("tests").tBodies[0].replaceChildren(...rows);
    labelCells($("tests"));
  }

  function resultItem(run) {
    const item = element("li");
    item.dataset.run = run.run_id;
    item.append(when(run.started_at), " ", status(run.status), " ", element("strong", `${run.plugin_name}::${run.test_name}`),
      ` ${run.duration_ms} ms (${run.trigger})`);
    if (run.status !== "passed") item.append(element("div", run.message));
    return item;
  }

  async function loadResults() {
    const query = plugin ? `&plugin_name=${encodeURIComponent(plugin)}` : "";
    const body = await getJson(`/tests/results?limit=50${query}`);
    $("results").replaceChildren(...body.results.map(resultItem));
  }

  // Schedules come a page at a time; "Show more schedules" asks for the next page.
  let schedulesShown = 100;
  async function loadSchedules() {
    let schedules = [];
    let after = 0;
    while (schedules.length < schedulesShown) {
      const limit = Math.min(500, schedulesShown - schedules.length);
      const body = await getJson(`/tests/schedules?limit=${limit}&after=${after}`);
      schedules = schedules.concat(body.schedules);
      after = body.next_after;
      if (after === null || after === undefined) break;
    }
    const more = $("more-schedules");
    more.hidden = after === null || after === undefined;
    const rows = schedules
      .filter((s) => !plugin || s.plugin_name === plugin)
      .map((s) => {
        const row = element("tr");
        row.dataset.schedule = s.id;
        cell(row, s.id, "number");
        cell(row, `${s.plugin_name}::${s.test_name || "*"}`);
        cell(row, `${s.schedule_expression} (${s.timezone})`);
        cell(row, s.priority);
        const next = cell(row, s.enabled ? (s.next_run_at ? null : "never again") : "paused");
        if (s.enabled && s.next_run_at) next.append(when(s.next_run_at));
        next.dataset.next = "";
        const actions = cell(row);
        const toggle = element("button", s.enabled ? "Pause" : "Resume", "secondary");
        toggle.type = "button";
        toggle.dataset.admin = "";
        toggle.hidden = csrf === null;
        toggle.addEventListener("click", () => act(toggle, "POST", `/tests/schedule/${s.id}/${s.enabled ? "pause" : "resume"}`));
        const remove = element("button", "Delete", "secondary");
        remove.type = "button";
        remove.dataset.admin = "";
        remove.hidden = csrf === null;
        remove.setAttribute("aria-label", `Delete schedule ${s.id}`);
        remove.addEventListener("click", () => act(remove, "DELETE", `/tests/schedule/${s.id}`));
        actions.append(toggle, " ", remove);
        return row;
      });
    $("schedules").tBodies[0].replaceChildren(...rows);
    labelCells($("schedules"));
  }

  $("more-schedules").addEventListener("click", () => {
    schedulesShown += 100;
    loadSchedules().catch((error) => say(`Schedules could not be loaded: ${error.message}`, true));
  });

  async function refreshAll() {
    try {
      await loadDiscovery();
      await Promise.all([loadStatistics(), loadResults(), loadSchedules()]);
    } catch (error) {
      $("live").textContent = `The dashboard could not be refreshed: ${error.message}`;
    }
  }

  // Statistics follow results; many results in a burst refresh them once.
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => loadStatistics().catch(() => {}), 300);
  }

  // --- Actions -------------------------------------------------------------------------

  async function runTests(button, body) {
    button.disabled = true;
    say(`Running ${body.test_name ? `${body.plugin_name}::${body.test_name}` : `the tests of ${body.plugin_name}`}…`);
    try {
      // Results arrive over the live connection; the answer says what was queued.
      const answer = await admin("POST", "/tests/run", { ...body, wait: false });
      say(`Queued ${answer.queued.length} test${answer.queued.length === 1 ? "" : "s"}.`);
    } catch (error) {
      say(`Running failed: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  async function act(button, method, path) {
    button.disabled = true;
    try {
      await admin(method, path);
      await loadSchedules();
    } catch (error) {
      say(error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  $("discover").addEventListener("click", async () => {
    const body = await loadDiscovery();
    $("discovered").textContent = `${body.total_tests} tests in ${body.plugins.length} plugins.`;
    await loadStatistics();
  });

  $("bulk-run").addEventListener("click", async (event) => {
    const names = [...document.querySelectorAll("#plugins input[type=checkbox]:checked")].map((box) => box.value);
    if (names.length === 0) {
      say("Check the plugins to run first.", true);
      return;
    }
    event.target.disabled = true;
    try {
      const answer = await admin("POST", "/tests/bulk-run", { plugin_names: names, wait: false });
      say(`Queued ${answer.queued.length} tests of ${names.join(", ")}.`);
    } catch (error) {
      say(`Bulk run failed: ${error.message}`, true);
    } finally {
      event.target.disabled = false;
    }
  });

  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("admin-token");
    const token = input.value;
    input.value = "";
    try {
      setSignedIn(await session.signIn(token));
      say("");
    } catch (error) {
      say(`Signing in failed: ${error.message}`, true);
    }
  });

  $("sign-out").addEventListener("click", async () => {
    try {
      await admin("DELETE", "/api/v1/admin/session");
    } catch (_) {
      // Signed out either way.
    }
    setSignedIn(null);
    say("Signed out.");
  });

  // --- The schedule form ---------------------------------------------------------------

  let previewTimer = null;
  async function preview() {
    const expression = $("schedule-expression").value;
    const timezone = $("schedule-timezone").value || "UTC";
    const line = $("preview");
    try {
      const body = await getJson(`/tests/schedule/preview?schedule_expression=${encodeURIComponent(expression)}&timezone=${encodeURIComponent(timezone)}`);
      line.className = "";
      line.textContent = `Next runs: ${body.next_runs.map(local).join(", ")}`;
    } catch (error) {
      line.className = "error";
      line.textContent = error.message;
    }
  }
  function previewSoon() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 250);
  }

  $("schedule-plugin").addEventListener("change", fillTests);
  $("schedule-preset").addEventListener("change", () => {
    const preset = $("schedule-preset").value;
    if (preset) $("schedule-expression").value = preset;
    $("schedule-expression").focus();
    previewSoon();
  });
  $("schedule-expression").addEventListener("input", () => {
    $("schedule-preset").value = "";
    previewSoon();
  });
  $("schedule-timezone").addEventListener("input", previewSoon);

  $("schedule-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const timeout = $("schedule-timeout").value;
    const body = {
      plugin_name: $("schedule-plugin").value,
      test_name: $("schedule-test").value || null,
      schedule_expression: $("schedule-expression").value,
      timezone: $("schedule-timezone").value || "UTC",
      priority: $("schedule-priority").value,
    };
    if (timeout) body.timeout = Number(timeout);
    try {
      const created = await admin("POST", "/tests/schedule", body);
      say(`Schedule ${created.id} created; next run ${created.next_run_at ? local(created.next_run_at) : "never"}.`);
      await loadSchedules();
    } catch (error) {
      say(`The schedule was not created: ${error.message}`, true);
    }
  });

  // --- Live updates --------------------------------------------------------------------

  function live() {
    const source = new EventSource("/tests/live-updates");
    source.addEventListener("hello", () => {
      $("live").textContent = "Live: results appear as tests finish.";
      if (fallback !== null) {
        clearInterval(fallback);
        fallback = null;
        refreshAll();
      }
    });
    source.addEventListener("queued", (event) => {
      const data = JSON.parse(event.data);
      if (plugin && data.plugin !== plugin) return;
      const row = document.querySelector(`#tests tr[data-test="${CSS.escape(`${data.plugin}::${data.test}`)}"] td:nth-child(3)`);
      if (row) row.replaceChildren(status("queued"));
    });
    source.addEventListener("started", (event) => {
      const data = JSON.parse(event.data);
      const row = document.querySelector(`#tests tr[data-test="${CSS.escape(`${data.plugin}::${data.test}`)}"] td:nth-child(3)`);
      if (row) row.replaceChildren(status("running"));
    });
    source.addEventListener("finished", (event) => {
      const run = JSON.parse(event.data).run;
      if (plugin && run.plugin_name !== plugin) return;
      const list = $("results");
      list.prepend(resultItem(run));
      while (list.children.length > 50) list.lastChild.remove();
      const row = document.querySelector(`#tests tr[data-test="${CSS.escape(`${run.plugin_name}::${run.test_name}`)}"] td:nth-child(3)`);
      if (row) row.replaceChildren(status(run.status));
      refreshSoon();
    });
    source.addEventListener("schedule_changed", () => loadSchedules().catch(() => {}));
    source.addEventListener("lagged", refreshAll);
    source.onerror = () => {
      // EventSource reconnects by itself; meanwhile the page refreshes every 30 seconds.
      $("live").textContent = "Live updates are interrupted; refreshing every 30 seconds.";
      if (fallback === null) fallback = setInterval(refreshAll, 30000);
    };
  }

  if (plugin) {
    $("title").textContent = `Tests of ${plugin}`;
    document.title = `Tests of ${plugin} · Test Dashboard`;
  }
  $("schedule-timezone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  // A session this tab opened earlier (here or on the shell), if the server still knows it.
  setSignedIn(session.csrf());
  if (csrf !== null) {
    admin("GET", "/api/v1/admin/session").catch(() => say("The earlier admin session has ended; sign in again.", true));
  }
  refreshAll().then(preview);
  live();
})();
