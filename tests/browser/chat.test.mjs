// The chat client across a server restart, in Debian's headless Chromium: what was sent
// while a person was disconnected appears once they are back, without a reload. This file
// owns its server, so that it can restart it on the same address and data folder. Run by
// tests/tests/it/browser.rs, which sets:
//   PLEXICHAT_BIN   a `plexichat` binary with the chat plugins
//   DATA_DIR        an empty folder for the server's data
//   CHROMIUM        the browser executable
//   SCREENSHOTS     where each test saves its screenshot

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/tests/it/browser.rs`);
  return value;
}

const binary = required("PLEXICHAT_BIN");
const dataDir = required("DATA_DIR");
const screenshots = required("SCREENSHOTS");
mkdirSync(screenshots, { recursive: true });

// A free loopback port, kept for both lives of the server.
async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Starts the server; resolves once it says it is serving.
function start(port) {
  const child = spawn(binary, ["serve", "--bind", `127.0.0.1:${port}`], {
    cwd: dataDir,
    env: { ...process.env, RUST_LOG: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log = [];
  return new Promise((resolve, reject) => {
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text) => {
      log.push(text);
      if (text.includes("serving")) resolve({ child, log });
    });
    child.on("exit", (code) => reject(new Error(`the server exited (${code}):\n${log.join("")}`)));
  });
}

async function stop(server) {
  const exited = new Promise((resolve) => server.child.on("exit", resolve));
  server.child.kill("SIGTERM");
  await exited;
}

let server;
let browser;
after(async () => {
  await browser?.close();
  if (server) await stop(server).catch(() => {});
});

async function api(base, method, path, token, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, base), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = response.status === 204 ? null : await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

test("after the server restarts, the client shows what was sent meanwhile without a reload", async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  server = await start(port);
  const password = "correct horse battery";
  const alice = await api(base, "POST", "/api/v1/auth/register", null, { username: "alice", password });
  await api(base, "POST", "/api/v1/auth/register", null, { username: "bob", password });
  const channel = await api(base, "POST", "/api/v1/channels", alice.access_token, { kind: "public", name: "general" });

  browser = await chromium.launch({
    executablePath: required("CHROMIUM"),
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    // While the server is down, the browser reports the failed reconnections.
    if (message.type() === "error" && !/WebSocket|ERR_|Failed to load/.test(message.text())) {
      problems.push(`console error: ${message.text()}`);
    }
  });

  // Bob signs in through the page and joins the channel.
  await page.goto(`${base}/plugins/chat_web/chat/`);
  await page.locator("#username").fill("bob");
  await page.locator("#password").fill(password);
  await page.locator("#auth-submit").click();
  await page.locator("#joinable button", { hasText: "general" }).click();
  await page.locator("#join").click();
  await page.locator("#connection", { hasText: "connected" }).waitFor();
  await api(base, "POST", `/api/v1/channels/${channel.id}/messages`, alice.access_token, { body: "before the restart" });
  await page.locator("#messages .message", { hasText: "before the restart" }).waitFor();

  // The server goes away, and while Bob's browser cannot reach it, Alice writes.
  await stop(server);
  await page.locator("#connection", { hasText: "reconnecting" }).waitFor();
  await context.setOffline(true);
  server = await start(port);
  const relogin = await api(base, "POST", "/api/v1/auth/login", null, { username: "alice", password });
  for (const body of ["while you were away", "and once more"]) {
    await api(base, "POST", `/api/v1/channels/${channel.id}/messages`, relogin.access_token, { body });
  }
  await context.setOffline(false);

  // Back online, Bob's client resumes where it stopped: both messages, in order, once.
  await page.locator("#messages .message", { hasText: "and once more" }).waitFor({ timeout: 20000 });
  await page.locator("#connection", { hasText: "connected" }).waitFor();
  const bodies = await page.locator("#messages .message .body").allTextContents();
  assert.deepEqual(bodies, ["before the restart", "while you were away", "and once more"]);
  assert.equal(await page.evaluate(() => document.querySelectorAll("#messages .message").length), 3);
  await page.screenshot({ path: join(screenshots, "chat-restart.png"), fullPage: true });
  await context.close();
  assert.deepEqual(problems, [], "the page reported problems");
});
