// The browser tests' one harness: the real `herald` binary on a free port of
// 127.0.0.1 with SQLite in a temporary directory, a real receiver (a small
// Node HTTP server on 127.0.0.1) for its webhooks, and Debian's Chromium
// driven by playwright-core. No part of Herald is mocked.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "..");
export const ADMIN_TOKEN = "console-test-admin-token-0123456789abcdef";
const HERALD = process.env.HERALD_BIN || path.join(ROOT, "target/debug/herald");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOTS = path.join(ROOT, "docs/console");
/// How long any wait for Herald or a delivery may take before a test fails.
const WAIT_MS = 20000;

/// Starts `herald serve` and resolves once it says where it listens.
export async function startHerald() {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-console-"));
  const child = spawn(
    HERALD,
    ["serve", "--listen", "127.0.0.1:0", "--data-dir", path.join(dir, "data"), "--allow-cidr", "127.0.0.1/32"],
    {
      env: {
        ...process.env,
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        // Code monitors may mirror the test's local repositories.
        HERALD_MONITORS__LOCAL_ROOTS: tmpdir(),
        RUST_LOG: "warn",
      },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  const base = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`herald did not start: ${seen}`)), WAIT_MS);
    child.stderr.on("data", (chunk) => {
      seen += chunk.toString();
      // Up to the end of the line: a chunk may end in the middle of the port.
      const found = seen.match(/listening on (http:\/\/[0-9.:]+)\r?\n/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`herald exited with ${code}: ${seen}`)));
  });
  return {
    base,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// A receiver on 127.0.0.1 that keeps every request and answers with
/// `respond` (status and body), which a test may change.
export async function startReceiver() {
  const receiver = {
    requests: [],
    respond: { status: 200, body: "ok from the test receiver" },
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      receiver.requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(receiver.respond.status, { "content-type": "text/plain" });
      res.end(receiver.respond.body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${server.address().port}`;
  receiver.stop = () => new Promise((resolve) => server.close(resolve));
  return receiver;
}

/// Calls Herald's JSON API.
export async function api(base, token, method, route, body) {
  const response = await fetch(base + route, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}`);
  return chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox"] });
}

/// A fresh page at 1280x800 that records CSP violations, page errors and
/// whether any injected script ran (`window.__xss`).
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const page = await context.newPage();
  page.cspViolations = [];
  page.pageErrors = [];
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp = (window.__csp || []).concat(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) page.cspViolations.push(message.text());
  });
  page.on("pageerror", (error) => page.pageErrors.push(String(error)));
  return page;
}

/// Signs in on the sign-in page with `token`.
export async function signIn(page, base, token) {
  await page.goto(base + "/");
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/console/);
}

/// Saves the page as docs/console/<name>.png at 1280x800.
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/// A git repository in a temporary directory with one commit; `commit`
/// adds another with `file` changed to `text` and the message given.
export function gitRepository() {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-console-repo-"));
  const git = (...args) =>
    execFileSync("git", ["-c", "user.name=Test", "-c", "user.email=test@example.com", ...args], { cwd: dir });
  git("init", "-q", "-b", "main");
  const commit = (file, text, message) => {
    writeFileSync(path.join(dir, file), text);
    git("add", file);
    git("commit", "-q", "-m", message);
  };
  commit("README.md", "hello\n", "first commit");
  return { dir, commit, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/// Polls `check` until it returns something truthy, or fails after WAIT_MS.
export async function waitFor(what, check) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
