// The web surface in a real browser: Debian's headless Chromium, driven by playwright-core.
// Run by tests/tests/it/browser.rs against a `plexichat` binary with every plugin, which sets:
//   PLEXICHAT_URL          the server's base URL (loopback)
//   PLEXICHAT_ADMIN_TOKEN  its admin token
//   CHROMIUM               the browser executable
//   SCREENSHOTS            where each test saves its screenshot
//
// Every page a test opens fails the test if it logs a JavaScript error, throws an uncaught
// exception, or violates the Content-Security-Policy.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = required("PLEXICHAT_URL");
const adminToken = required("PLEXICHAT_ADMIN_TOKEN");
const screenshots = required("SCREENSHOTS");
mkdirSync(screenshots, { recursive: true });

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through tests/tests/it/browser.rs`);
  }
  return value;
}

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: required("CHROMIUM"),
    // Root in a container has no sandbox to drop into; the rest keeps a closed network quiet.
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
});

after(async () => {
  await browser?.close();
});

// A fresh page (its own context: no cookies shared between tests) that records every
// problem the page reports but the `expected` console errors; `done` saves the screenshot
// and fails on any problem.
async function open(name, { width = 1280, height = 900, expected = [] } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !expected.some((pattern) => pattern.test(message.text()))) {
      problems.push(`console error: ${message.text()} (${message.location().url})`);
    }
  });
  // Chromium logs CSP refusals to the console too; the event catches them with their detail.
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });
  const done = async () => {
    await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
    await context.close();
    assert.deepEqual(problems, [], `${name}: the page reported problems`);
  };
  return { page, done };
}

async function goto(page, path) {
  const response = await page.goto(new URL(path, base).href);
  assert.equal(response.status(), 200, `GET ${path}`);
  return response;
}

async function apiPlugins() {
  const response = await fetch(new URL("/api/v1/plugins", base));
  return (await response.json()).plugins;
}

test("the shell lists every compiled-in plugin with its state and links", async () => {
  const { page, done } = await open("shell");
  await goto(page, "/");
  const listed = await page.locator("[data-plugin]").evaluateAll((cards) =>
    cards.map((card) => card.dataset.plugin),
  );
  const plugins = await apiPlugins();
  assert.deepEqual(listed.sort(), plugins.map((plugin) => plugin.name).sort());
  for (const plugin of plugins) {
    const state = page.locator(`[data-plugin="${plugin.name}"] [data-state]`);
    assert.equal(await state.textContent(), "running", plugin.name);
  }
  // Every plugin page and docs link the shell offers answers.
  const links = await page.locator(".plugin .links a").evaluateAll((anchors) =>
    anchors.map((anchor) => anchor.getAttribute("href")),
  );
  assert.ok(links.includes("/plugins/my_awesome_plugin/dashboard/"), links.join(" "));
  for (const link of links) {
    const response = await fetch(new URL(link, base), { redirect: "manual" });
    assert.ok([200, 303].includes(response.status), `${link}: ${response.status}`);
  }
  // The skip link is the first stop for a keyboard user and leads to the content.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to the content");
  await done();
});

test("the Awesome Dashboard's Perform Action button raises the count", async () => {
  const { page, done } = await open("dashboard");
  await goto(page, "/");
  await page.getByRole("link", { name: "Awesome Dashboard" }).click();
  await page.waitForURL(/\/plugins\/my_awesome_plugin\/dashboard\/$/);
  const count = page.locator("#actions-performed");
  // The script replaces the placeholder with the count it fetched.
  await page.waitForFunction(() => /^\d+$/.test(document.getElementById("actions-performed").textContent));
  const before = Number(await count.textContent());
  await page.getByLabel("Note").fill("from the browser test");
  await page.getByRole("button", { name: "Perform Action" }).click();
  await page.waitForFunction(
    (previous) => Number(document.getElementById("actions-performed").textContent) === previous + 1,
    before,
  );
  assert.match(await page.locator("#result").textContent(), /\S/);
  await done();
});

test("an admin signs in, disables and re-enables a plugin, and signs out", async () => {
  // The wrong token below is answered 401, which Chromium logs as a console error.
  const { page, done } = await open("admin", { expected: [/status of 401/] });
  await goto(page, "/");
  const state = page.locator('[data-plugin="awesome_audit"] [data-state]');
  const disable = page.getByRole("button", { name: "Disable awesome_audit" });
  assert.equal(await disable.isVisible(), false, "no admin action before signing in");

  // A wrong token is refused with the server's reason.
  await page.getByLabel("Admin token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signing in failed: wrong admin token").waitFor();

  await page.getByLabel("Admin token").fill(adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as admin").waitFor();
  assert.equal(await page.getByLabel("Admin token").inputValue(), "", "the token is not kept in the page");
  // The session cookie is out of every script's reach.
  assert.equal(await page.evaluate(() => document.cookie), "");
  // The tab keeps the CSRF token (and nothing else) where only the server's own pages can
  // read it; the next test shows plugin pages cannot.
  const stored = await page.evaluate(() => [Object.keys(localStorage), Object.keys(sessionStorage)]);
  assert.deepEqual(stored, [[], ["plexichat.admin.csrf"]]);

  await disable.click();
  await page.waitForFunction(() =>
    document.querySelector('[data-plugin="awesome_audit"] [data-state]').textContent === "disabled");
  let audit = (await apiPlugins()).find((plugin) => plugin.name === "awesome_audit");
  assert.equal(audit.state, "disabled");
  await page.screenshot({ path: join(screenshots, "admin-disabled.png"), fullPage: true });

  await page.getByRole("button", { name: "Enable awesome_audit" }).click();
  await page.waitForFunction(() =>
    document.querySelector('[data-plugin="awesome_audit"] [data-state]').textContent === "running");
  audit = (await apiPlugins()).find((plugin) => plugin.name === "awesome_audit");
  assert.equal(audit.state, "running");

  await page.getByRole("button", { name: "Reload configuration" }).click();
  await page.getByText(/Configuration reloaded|Reload refused/).waitFor();

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("Signed out.").waitFor();
  assert.equal(await disable.isVisible(), false);
  assert.equal(await state.textContent(), "running");
  await done();
});

test("a plugin page's script cannot act as the admin with the session cookie", async () => {
  // The refused request below is logged by Chromium as a console error; only that one is
  // expected.
  const { page, done } = await open("cookie-only", { expected: [/status of 401/] });
  await goto(page, "/");
  await page.getByLabel("Admin token").fill(adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as admin").waitFor();
  // Same browser, same origin, another page: what a plugin's script could try.
  await goto(page, "/plugins/my_awesome_plugin/dashboard/");
  const status = await page.evaluate(async () => {
    const response = await fetch("/api/v1/admin/plugins/awesome_audit/disable", {
      method: "POST",
      credentials: "same-origin",
    });
    return response.status;
  });
  assert.equal(status, 401);
  const audit = (await apiPlugins()).find((plugin) => plugin.name === "awesome_audit");
  assert.equal(audit.state, "running");
  await done();
});

test("a plugin page's script cannot reach the shell, the tab's storage or the admin session", async () => {
  // The shell refuses to be framed, which Chromium logs; only that is expected.
  const { page, done } = await open("isolation", { expected: [/Refused to display|frame-ancestors|X-Frame-Options/] });
  await goto(page, "/plugins/my_awesome_plugin/dashboard/");
  // What a hostile plugin page's script tries: open the shell, wait for it, hook its fetch to
  // catch the admin token when the admin signs in there.
  const popup = page.context().waitForEvent("page");
  const attack = await page.evaluate(async () => {
    window.captured = [];
    const shell = window.open("/");
    if (shell === null) return "no window";
    for (let i = 0; i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      try {
        if (shell.document.readyState === "complete" && shell.document.getElementById("sign-in")) {
          const original = shell.fetch;
          shell.fetch = (...args) => {
            window.captured.push(String(args[1] && args[1].body));
            return original.apply(shell, args);
          };
          return "hooked";
        }
      } catch (error) {
        return error.name;
      }
    }
    return shell.closed ? "closed" : "never loaded";
  });
  assert.notEqual(attack, "hooked", "a plugin page scripted the shell");
  const shell = await popup;
  await shell.waitForLoadState();
  assert.equal(await shell.evaluate(() => window.opener), null, "the shell keeps no opener");
  await shell.getByLabel("Admin token").fill(adminToken);
  await shell.getByRole("button", { name: "Sign in" }).click();
  await shell.getByText("Signed in as admin").waitFor();
  assert.deepEqual(await page.evaluate(() => window.captured), [], "nothing of the sign-in reached the plugin page");

  // Framing the shell, and reading the tab's storage (where the shell keeps the CSRF token).
  const framed = await page.evaluate(async () => {
    const frame = document.createElement("iframe");
    frame.src = "/";
    document.body.append(frame);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    try {
      return frame.contentDocument === null ? "no document" : `scriptable: ${frame.contentDocument.title}`;
    } catch (error) {
      return error.name;
    }
  });
  assert.doesNotMatch(framed, /^scriptable/, "a plugin page scripted the shell in a frame");
  const storage = await page.evaluate(() => {
    try {
      return `readable: ${JSON.stringify({ ...sessionStorage })}`;
    } catch (error) {
      return error.name;
    }
  });
  assert.equal(storage, "SecurityError", "a plugin page read the origin's storage");
  // The same tab, signed in on the shell, then navigated to the plugin page.
  await shell.goto(new URL("/plugins/my_awesome_plugin/dashboard/", base).href);
  const tabStorage = await shell.evaluate(() => {
    try {
      return `readable: ${JSON.stringify({ ...sessionStorage })}`;
    } catch (error) {
      return error.name;
    }
  });
  assert.equal(tabStorage, "SecurityError", "a plugin page read its tab's admin session");
  // The page's own API still answers it: the dashboard filled in its count.
  await shell.waitForFunction(() => /^\d+$/.test(document.getElementById("actions-performed").textContent));
  await done();
});

test("signing in on the shell carries to the Test Dashboard in the same tab and survives a reload", async () => {
  const { page, done } = await open("session-per-tab");
  await goto(page, "/");
  await page.getByLabel("Admin token").fill(adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as admin").waitFor();
  await page.reload();
  await page.getByText("Signed in as admin").waitFor();
  await page.getByRole("link", { name: "Test Dashboard" }).click();
  await page.waitForURL(/\/plugins\/test_manager\/dashboard\/$/);
  await page.locator('#plugins tr[data-plugin="my_awesome_plugin"]').waitFor();
  assert.equal(await page.getByRole("button", { name: "Run tests of my_awesome_plugin" }).isVisible(), true);
  await page.getByRole("button", { name: "Sign out" }).click();
  await goto(page, "/");
  assert.equal(await page.getByLabel("Admin token").isVisible(), true, "signing out on the dashboard signs the tab out");
  await done();
});

test("an admin changes a plugin's setting on the settings page, a wrong value refused beside its field", async () => {
  // The refused save is answered 400, which Chromium logs.
  const { page, done } = await open("settings", { expected: [/status of 400/] });
  await goto(page, "/");
  await page.getByLabel("Admin token").fill(adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Settings" }).click();
  await page.waitForURL(/\/settings$/);
  const awesome = page.locator('section[data-plugin="my_awesome_plugin"]');
  const interval = awesome.getByLabel("interval");
  await interval.waitFor();
  const before = await interval.inputValue();
  // Out of bounds: the server's message, the one `config check` gives, beside the field.
  await interval.fill("0");
  await awesome.getByRole("button", { name: "Save" }).click();
  await awesome.getByText("0 is less than the minimum of 1", { exact: false }).waitFor();
  // Saved: applied at once (the plugin's own API shows it) and still there after a reload.
  await interval.fill("12");
  await awesome.getByRole("button", { name: "Save" }).click();
  await page.getByText(/Saved and applied/).first().waitFor();
  const status = await (await fetch(new URL("/api/v1/awesome/status", base))).json();
  assert.equal(status.config.interval, 12);
  await page.reload();
  await page.locator('section[data-plugin="my_awesome_plugin"]').getByLabel("interval").waitFor();
  assert.equal(await page.locator('section[data-plugin="my_awesome_plugin"]').getByLabel("interval").inputValue(), "12");
  // Back to plexichat.toml and the defaults.
  await page.locator('section[data-plugin="my_awesome_plugin"]').getByRole("button", { name: "Back to plexichat.toml" }).click();
  await page.getByText(/Back to plexichat.toml and the defaults/).first().waitFor();
  assert.equal(await page.locator('section[data-plugin="my_awesome_plugin"]').getByLabel("interval").inputValue(), before);
  await done();
});

test("docs search finds a word only awesome_audit's docs have and leads to the page", async () => {
  const { page, done } = await open("docs-search");
  await goto(page, "/docs");
  await page.getByRole("searchbox").fill("screening");
  const hit = page.locator("#live-results a").first();
  await hit.waitFor();
  assert.match(await page.locator("#live-results").textContent(), /awesome_audit/);
  await hit.click();
  await page.waitForURL(/\/docs\/awesome_audit\//);
  assert.match(await page.locator("main").textContent(), /screening/i);
  await done();
});

test("the API reference, reached from the shell, shows every operation of the OpenAPI document", async () => {
  const { page, done } = await open("api-reference");
  await goto(page, "/");
  await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "API reference" }).click();
  await page.waitForURL(/\/docs\/api$/);
  const document = await (await fetch(new URL("/openapi.json", base))).json();
  const ids = Object.values(document.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
  const shown = await page.locator("article.operation").evaluateAll((articles) => articles.map((a) => a.id));
  assert.deepEqual(shown.sort(), ids.sort());
  // A plugin's operation, with the schema of its request body one click away.
  const action = page.locator('[id="my_awesome_plugin.perform_action"]');
  await action.getByText("Request body").waitFor();
  await action.locator("details summary").first().click();
  assert.match(await action.locator("details pre").first().textContent(), /"note"/);
  await done();
});

test("the test dashboard runs a plugin's tests, shows the results live, and schedules them", async () => {
  const { page, done } = await open("test-dashboard");
  await goto(page, "/");
  await page.getByRole("link", { name: "Test Dashboard" }).click();
  await page.waitForURL(/\/plugins\/test_manager\/dashboard\/$/);
  await page.getByText("Live: results appear as tests finish.").waitFor();
  // Reading needs no sign-in: every plugin with tests is listed.
  await page.locator('#plugins tr[data-plugin="my_awesome_plugin"]').waitFor();
  assert.equal(await page.getByRole("button", { name: "Run tests of my_awesome_plugin" }).isVisible(), false);

  await page.getByLabel("Admin token").fill(adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as admin").waitFor();
  // The results must arrive without the page reloading: a reload would lose this marker.
  await page.evaluate(() => { window.stillTheSamePage = true; });
  await page.getByRole("button", { name: "Run tests of my_awesome_plugin" }).click();
  const result = page.locator("#results li", { hasText: "my_awesome_plugin::status_reports_the_configuration" }).first();
  await result.waitFor();
  assert.match(await result.textContent(), /passed/);
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true);
  const stored = await (await fetch(new URL("/tests/results?plugin_name=my_awesome_plugin&limit=10", base))).json();
  assert.ok(stored.results.some((run) => run.test_name === "status_reports_the_configuration" && run.status === "passed"));

  // A schedule from a preset: the server computes its next runs before and after saving.
  await page.getByLabel("Plugin", { exact: true }).selectOption("my_awesome_plugin");
  await page.getByLabel("When").selectOption("every_15_minutes");
  await page.getByText(/^Next runs: /).waitFor();
  await page.getByRole("button", { name: "Create schedule" }).click();
  await page.getByText(/^Schedule \d+ created; next run /).waitFor();
  const row = page.locator("#schedules tbody tr", { hasText: "every_15_minutes" }).first();
  await row.waitFor();
  // The next run reads as a local time with how soon, its ISO value on hover.
  const next = row.locator("[data-next] time");
  assert.match(await next.getAttribute("datetime"), /^\d{4}-\d\d-\d\dT/);
  assert.match(await next.textContent(), /\(in \d+ min\.?\)$/);
  assert.equal(await next.getAttribute("title"), await next.getAttribute("datetime"));
  const schedules = (await (await fetch(new URL("/tests/schedules", base))).json()).schedules;
  assert.ok(schedules.some((s) => s.plugin_name === "my_awesome_plugin" && s.schedule_expression === "every_15_minutes"));

  // One plugin's page.
  await page.locator('#plugins a', { hasText: "my_awesome_plugin" }).click();
  await page.waitForURL(/\?plugin=my_awesome_plugin$/);
  await page.getByRole("heading", { name: "Tests of my_awesome_plugin" }).waitFor();
  await done();
});

test("the shell, the docs and the dashboard fit a narrow screen", async () => {
  for (const path of ["/", "/docs", "/docs?q=screening", "/docs/api", "/docs/my_awesome_plugin/README.md", "/plugins/my_awesome_plugin/dashboard/", "/plugins/test_manager/dashboard/"]) {
    const name = `narrow${path.replaceAll(/[^a-z0-9]+/gi, "-")}`;
    const { page, done } = await open(name, { width: 360, height: 740 });
    await goto(page, path);
    const overflow = await page.evaluate(
      () => document.scrollingElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `${path} is ${overflow}px wider than a 360px screen`);
    if (path.startsWith("/docs")) {
      // The page itself (a doc, the search results) comes before the list of docs.
      const [main, nav] = await page.evaluate(() => [
        document.querySelector("main").getBoundingClientRect().top,
        document.querySelector('nav[aria-label="Documentation"]').getBoundingClientRect().top,
      ]);
      assert.ok(main < nav, `${path}: the list of docs comes before the page`);
    }
    if (path === "/plugins/test_manager/dashboard/") {
      // Every cell of a plugin's row, its status and Run button included, is on the screen.
      const row = page.locator('#tests tr[data-test="my_awesome_plugin::status_reports_the_configuration"]');
      await row.waitFor();
      const outside = await row.evaluate((tr) =>
        [...tr.cells].filter((td) => td.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map((td) => td.dataset.label));
      assert.deepEqual(outside, [], "cells pushed off a 360px screen");
      assert.equal(await row.locator('td[data-label="Last status"]').isVisible(), true);
    }
    await done();
  }
});

// Registers `username` on the chat page, reached in one click from `/`.
async function chatter(name, username, options) {
  const { page, done } = await open(name, options);
  await goto(page, "/");
  await page.locator('.px-bar nav a[href="/plugins/chat_web/chat/"]').click();
  await page.getByRole("tab", { name: "Register" }).click();
  await page.locator("#username").fill(username);
  await page.locator("#password").fill("correct horse battery");
  await page.locator("#auth-submit").click();
  await page.locator("#chat").waitFor();
  await page.locator("#connection", { hasText: "connected" }).waitFor();
  return { page, done };
}

test("two people chat live: sends, replies, typing, reactions and edits arrive without a reload", async () => {
  const suffix = Date.now().toString(36);
  const alice = await chatter("chat-alice", `alice-${suffix}`);
  await alice.page.locator("summary", { hasText: "New channel" }).click();
  await alice.page.locator("#channel-name").fill(`lobby-${suffix}`);
  await alice.page.getByRole("button", { name: "Create" }).click();
  await alice.page.locator("#room-name", { hasText: `lobby-${suffix}` }).waitFor();

  // Bob, on a phone-sized screen, finds the public channel and joins it.
  const bob = await chatter("chat-bob", `bob-${suffix}`, { width: 360, height: 740 });
  await bob.page.getByRole("button", { name: "Channels" }).click();
  await bob.page.locator("#joinable button", { hasText: `lobby-${suffix}` }).click();
  await bob.page.locator("#join").click();
  await bob.page.locator("#composer").waitFor();

  await alice.page.locator("#message").fill("hello bob");
  await alice.page.locator("#message").press("Enter");
  const bobsView = bob.page.locator("#messages .message", { hasText: "hello bob" });
  await bobsView.waitFor();

  await bob.page.locator("#message").pressSequentially("hi alice", { delay: 20 });
  await alice.page.locator("#typing", { hasText: "is typing" }).waitFor();
  await bob.page.locator("#message").press("Enter");
  const alicesView = alice.page.locator("#messages .message", { hasText: "hi alice" });
  await alicesView.waitFor();

  await alicesView.getByRole("button", { name: "React with 👍" }).click();
  await bob.page.locator("#messages .message", { hasText: "hi alice" }).locator(".reaction", { hasText: "👍 1" }).waitFor();

  const id = await alice.page.locator("#messages .message", { hasText: "hello bob" }).getAttribute("data-message");
  const mine = alice.page.locator(`#messages [data-message="${id}"]`);
  await mine.getByRole("button", { name: "Edit" }).click();
  await mine.locator("textarea").fill("hello bob, edited");
  await mine.getByRole("button", { name: "Save" }).click();
  await bob.page.locator("#messages .message", { hasText: "hello bob, edited" }).locator("text=(edited)").waitFor();

  // An image attached by one shows as a preview for the other.
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGMQaPgARwzEcQBiUhgBrsojNwAAAABJRU5ErkJggg==",
    "base64",
  );
  await alice.page.locator("#upload").setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: png });
  await alice.page.locator("#pending li", { hasText: "dot.png" }).waitFor();
  await alice.page.locator("#send").click();
  const preview = bob.page.locator("#messages .message .attachments img[alt='dot.png']");
  await preview.waitFor();
  await bob.page.waitForFunction(() => {
    const image = document.querySelector("#messages .attachments img[alt='dot.png']");
    return image && image.complete && image.naturalWidth === 4;
  });

  // A reply in a thread shows on the root's reply count for the other side.
  await bobsView.getByRole("button", { name: "Reply" }).click();
  await bob.page.locator("#thread-message").fill("in the thread");
  await bob.page.locator("#thread-message").press("Enter");
  await alice.page.locator("#messages .message", { hasText: "hello bob, edited" }).getByRole("button", { name: "1 reply" }).waitFor();

  const overflow = await bob.page.evaluate(
    () => document.scrollingElement.scrollWidth - document.documentElement.clientWidth,
  );
  assert.ok(overflow <= 0, `the chat is ${overflow}px wider than a 360px screen`);
  await alice.done();
  await bob.done();
});

// The TOTP code of `secret` at `offset` seconds from now, by oathtool.
function totp(secret, offset = 0) {
  const at = new Date(Date.now() + offset * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  return execFileSync("oathtool", ["--totp", "-b", "--now", at, secret], { encoding: "utf8" }).trim();
}

test("settings: a profile, two-factor enrolment from the QR code on the page, and sessions", async () => {
  const suffix = Date.now().toString(36);
  const { page, done } = await chatter("chat-settings", `carol-${suffix}`, { expected: [/status of 401/] });
  await page.getByRole("button", { name: "Settings" }).click();
  await page.locator("#display-name").fill("Carol Example");
  await page.locator("#status-text").fill("writing tests");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.locator("#profile-status", { hasText: "Saved." }).waitFor();
  await page.locator("#me-name", { hasText: "Carol Example" }).waitFor();

  // Enrol: the QR code drawn on the page carries the key, as zbar reads it.
  await page.locator("#totp-password").fill("correct horse battery");
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  const qr = page.locator("#totp-qr");
  await page.locator("#totp-confirm").waitFor();
  const image = join(screenshots, "totp-qr.png");
  await qr.screenshot({ path: image });
  const decoded = execFileSync("zbarimg", ["--quiet", "--raw", image], { encoding: "utf8" }).trim();
  assert.equal(decoded, await qr.getAttribute("data-uri"));
  const secret = new URL(decoded).searchParams.get("secret");
  assert.equal(secret, await page.locator("#totp-secret").textContent());
  await page.locator("#totp-code").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on" }).click();
  await page.locator("#totp-status", { hasText: "is on" }).waitFor();
  assert.equal(await page.locator("#recovery-codes li").count(), 10);
  const recovery = await page.locator("#recovery-codes li").first().textContent();

  // Signing in again asks for a code.
  await page.locator("#sign-out").click();
  await page.locator("#username").fill(`carol-${suffix}`);
  await page.locator("#password").fill("correct horse battery");
  await page.locator("#auth-submit").click();
  await page.locator("#totp").waitFor();
  await page.locator("#totp").fill(totp(secret, 30));
  await page.locator("#auth-submit").click();
  await page.locator("#chat").waitFor();

  // Another client signs in with a recovery code; "sign out everywhere else" ends it.
  const other = await fetch(new URL("/api/v1/auth/login", base), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: `carol-${suffix}`, password: "correct horse battery", recovery_code: recovery }),
  });
  assert.equal(other.status, 200);
  await page.getByRole("button", { name: "Settings" }).click();
  await page.locator("#sessions li", { hasText: "This browser" }).waitFor();
  assert.equal(await page.locator("#sessions li").count(), 2);
  await page.getByRole("button", { name: "Sign out everywhere else" }).click();
  await page.locator("#sessions-status", { hasText: "everywhere else" }).waitFor();
  assert.equal(await page.locator("#sessions li").count(), 1);
  await done();
});

test("a reset link from an admin sets a new password, and signing in takes it", async () => {
  const username = `rita-${Date.now().toString(36)}`;
  const registered = await fetch(new URL("/api/v1/auth/register", base), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password: "a forgotten password" }),
  });
  assert.equal(registered.status, 201);
  const made = await fetch(new URL("/api/v1/auth/password-resets", base), {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ username }),
  });
  assert.equal(made.status, 201);
  const { code } = await made.json();
  const { page, done } = await open("chat-reset");
  await goto(page, `/plugins/chat_web/chat/#reset=${encodeURIComponent(code)}`);
  await page.locator("#reset-password").fill("a remembered password");
  await page.getByRole("button", { name: "Set password" }).click();
  await page.locator("#auth-error", { hasText: "Your new password is set" }).waitFor();
  assert.equal(new URL(page.url()).hash, "", "the spent code leaves the address bar");
  await page.locator("#username").fill(username);
  await page.locator("#password").fill("a remembered password");
  await page.locator("#auth-submit").click();
  await page.locator("#chat").waitFor();
  await done();
});

test("every page has the common bar and look, and an error is a page for a person", async () => {
  for (const path of ["/", "/docs", "/plugins/my_awesome_plugin/dashboard/", "/plugins/test_manager/dashboard/"]) {
    const { page, done } = await open(`look${path.replaceAll(/[^a-z0-9]+/gi, "-")}`);
    await goto(page, path);
    const sheets = await page.evaluate(() => [...document.styleSheets].map((sheet) => new URL(sheet.href).pathname));
    assert.ok(sheets.includes("/ui/plexichat.css"), `${path}: ${sheets}`);
    await page.locator(".px-bar .px-brand").first().waitFor();
    assert.equal(await page.locator(".px-bar .px-brand").first().getAttribute("href"), "/");
    await done();
  }
  // A browser asking for what is not there gets a page in the same look; a script, JSON.
  const { page, done } = await open("error-page", { expected: [/status of 404/] });
  const response = await page.goto(new URL("/no/such/page", base).href);
  assert.equal(response.status(), 404);
  assert.match(response.headers()["content-type"], /^text\/html/);
  await page.getByRole("heading", { name: "Not Found" }).waitFor();
  assert.match(await page.locator("main").textContent(), /no route for GET \/no\/such\/page/);
  await page.locator('.px-bar nav a[href="/docs"]').waitFor();
  const json = await fetch(new URL("/no/such/page", base));
  assert.match(json.headers.get("content-type"), /^application\/problem\+json/);
  await done();
});
