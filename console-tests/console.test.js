// The console, end to end in Chromium: the real herald binary, a real
// receiver on 127.0.0.1, and every flow a person goes through.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  ADMIN_TOKEN, api, gitRepository, launchBrowser, newPage, screenshot, signIn, startHerald, startReceiver, waitFor,
} from "./harness.js";

const XSS = `<script>window.__xss=1</script>"><img src=x onerror="window.__xss=1">`;

let herald, receiver, browser;

before(async () => {
  herald = await startHerald();
  receiver = await startReceiver();
  browser = await launchBrowser();
  // A producer's own event type, registered through the API as a producer would.
  const created = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/event-types", {
    key: "build:finished",
    description: "A CI build finished",
    schema: { type: "object", required: ["id"] },
    example: { id: 1 },
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
});

after(async () => {
  await browser?.close();
  await receiver?.stop();
  await herald?.stop();
});

/// Nothing injected ran, and the page broke no rule of its CSP.
async function assertClean(page) {
  assert.equal(await page.evaluate(() => window.__xss), undefined, "an injected script ran");
  assert.deepEqual(await page.evaluate(() => window.__csp || []), [], "CSP violations");
  assert.deepEqual(page.cspViolations, [], "CSP violations in the console");
  assert.deepEqual(page.pageErrors, [], "script errors");
}

async function webhookId(name) {
  const list = await api(herald.base, ADMIN_TOKEN, "GET", "/api/v1/webhooks");
  return list.json.items.find((w) => w.name === name).id;
}

test("signing in refuses an unknown token and accepts the admin token", async () => {
  const page = await newPage(browser);
  await page.goto(herald.base + "/console/webhooks");
  // Not signed in: the console sends the person to the sign-in page.
  assert.match(page.url(), /\/\?next=/);
  await screenshot(page, "sign-in");
  await page.getByLabel("Token").fill("not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That token is not known").waitFor();
  await page.getByLabel("Token").fill(ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  // Back to the page asked for.
  await page.waitForURL(/\/console\/webhooks$/);
  const cookie = (await page.context().cookies()).find((c) => c.name === "herald_session");
  assert.ok(cookie.httpOnly, "HttpOnly");
  assert.equal(cookie.sameSite, "Strict");
  assert.ok(cookie.expires > Date.now() / 1000, "the session expires");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(herald.base + "/");
  await page.goto(herald.base + "/console");
  assert.match(page.url(), /\/\?next=/, "signed out");
  await assertClean(page);
  await page.context().close();
});

test("a webhook to the local receiver: create, publish, watch the log, open the attempt, redeliver, Test", async () => {
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(herald.base + "/console/webhooks");
  await page.getByRole("link", { name: "New webhook" }).click();
  await page.getByLabel("Name", { exact: true }).fill("ci-builds");
  await page.getByLabel("Endpoint URL").fill(receiver.url + "/hooks/ci");
  await page.getByLabel("Project", { exact: true }).fill("web");
  await page.getByRole("checkbox", { name: /build:finished/ }).check();
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, "webhook-form");
  await page.getByRole("button", { name: "Create webhook" }).click();
  await page.getByRole("heading", { name: "Webhook ci-builds created" }).waitFor();
  const secret = await page.locator("#new-secret").textContent();
  assert.match(secret, /^whsec_/);
  await page.getByRole("link", { name: "Open the webhook" }).click();

  // The log is open; an event published through the API appears in it by itself.
  assert.equal(await page.locator("#delivery-rows tr td.empty").count(), 1);
  const published = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/events", {
    type: "build:finished", project: "web", payload: { id: 4711, status: "passed" },
  });
  assert.equal(published.status, 202, JSON.stringify(published.json));
  await page.locator("#delivery-rows .badge.succeeded").waitFor({ timeout: 20000 });
  assert.equal(receiver.requests.length, 1);
  await screenshot(page, "delivery-log");

  await page.locator("#delivery-rows a").first().click();
  await page.getByRole("heading", { name: /Attempt 1/ }).waitFor();
  await page.getByText("ok from the test receiver").waitFor();
  assert.match(await page.locator("#payload").textContent(), /"id": 4711/);
  // The signature header is shown redacted or not at all, never the secret.
  assert.ok(!(await page.content()).includes(secret.slice(6)), "the secret is not on the page");
  await screenshot(page, "delivery-detail");

  await page.getByRole("button", { name: "Redeliver" }).click();
  await page.getByText("Delivery queued for another attempt now.").waitFor();
  await waitFor("the redelivery", () => receiver.requests.length === 2);

  receiver.respond = { status: 418, body: "a teapot answered" };
  await page.getByRole("button", { name: "Test" }).click();
  await page.locator("#test-result").getByText("418").waitFor();
  await page.locator("#test-result").getByText("a teapot answered").waitFor();
  receiver.respond = { status: 200, body: "ok from the test receiver" };

  await page.goto(herald.base + "/console/webhooks");
  const row = page.locator("#webhooks tbody tr", { hasText: "ci-builds" });
  await row.locator(".badge.succeeded").waitFor();
  await screenshot(page, "webhooks");
  await assertClean(page);
  await page.context().close();
});

test("the webhook form can be filled and sent with the keyboard alone", async () => {
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(herald.base + "/console/webhooks");
  /// Presses Tab until the focused element matches `selector`.
  async function tabTo(selector) {
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
    }
    throw new Error(`Tab never reached ${selector}`);
  }
  await tabTo('a[href="/console/webhooks/new"]');
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/new$/);
  await tabTo("#name");
  await page.keyboard.type("keyboard-made");
  await tabTo("#url");
  await page.keyboard.type(receiver.url + "/keys");
  await tabTo('input[value="build:finished"]');
  await page.keyboard.press("Space");
  await tabTo('button[type="submit"].primary');
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Webhook keyboard-made created" }).waitFor();
  await assertClean(page);
  await page.context().close();
});

test("API tokens: a project token sees only its project, a read token changes nothing (no form but signing out on any page, replace refused)", async () => {
  const admin = await newPage(browser);
  await signIn(admin, herald.base, ADMIN_TOKEN);
  // A webhook in another project, which the project token must not see.
  const other = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/webhooks", {
    name: "other-project-hook", url: receiver.url + "/other", event_types: ["build:*"], project: "payments",
  });
  assert.equal(other.status, 201);

  async function createToken(name, scope, project) {
    await admin.goto(herald.base + "/console/tokens");
    await admin.getByLabel("Name", { exact: true }).fill(name);
    await admin.getByLabel("Scope").selectOption(scope);
    if (project) await admin.getByLabel("Project key").fill(project);
    await admin.getByLabel("Expires in").fill("1d");
    await admin.getByRole("button", { name: "Create token" }).click();
    return (await admin.locator("#new-token").textContent()).trim();
  }
  const projectToken = await createToken("web-team", "project", "web");
  const readToken = await createToken("auditor", "read");
  await screenshot(admin, "tokens");

  const project = await newPage(browser);
  await signIn(project, herald.base, projectToken);
  await project.goto(herald.base + "/console/webhooks");
  await project.getByRole("link", { name: "ci-builds" }).waitFor();
  assert.equal(await project.getByText("other-project-hook").count(), 0, "another project's webhook");
  assert.equal(await project.getByRole("link", { name: "API tokens" }).count(), 0);
  const otherId = await webhookId("other-project-hook");
  const refused = await project.goto(`${herald.base}/console/webhooks/${otherId}`);
  assert.equal(refused.status(), 404);
  await project.context().close();

  const reader = await newPage(browser);
  await signIn(reader, herald.base, readToken);
  const ciId = await webhookId("ci-builds");
  for (const route of ["/console", "/console/webhooks", `/console/webhooks/${ciId}`, "/console/event-types",
    "/console/event-types/build:finished", "/console/receivers", "/console/monitors"]) {
    await reader.goto(herald.base + route);
    // The only form that posts is signing out.
    const posting = await reader.locator('form[method="post"]').evaluateAll((forms) => forms.map((f) => f.getAttribute("action")));
    assert.deepEqual(posting, ["/sign-out"], `${route} offers changes to a read token`);
    assert.equal(await reader.getByRole("link", { name: /New webhook|Edit|Delete/ }).count(), 0);
  }
  await reader.goto(`${herald.base}/console/webhooks/${ciId}`);
  const deliveryLink = reader.locator("#delivery-rows a").first();
  await deliveryLink.click();
  assert.equal(await reader.getByRole("button", { name: "Redeliver" }).count(), 0);
  // The server refuses anyway, even a form carrying the session's own CSRF token.
  await reader.goto(`${herald.base}/console/webhooks/${ciId}`);
  const csrf = await reader.locator('form[action="/sign-out"] input[name="csrf"]').inputValue();
  const post = await reader.request.post(`${herald.base}/console/webhooks/${ciId}/delete`, { form: { csrf } });
  assert.equal(post.status(), 403);
  const secret = await reader.request.post(`${herald.base}/console/webhooks/${ciId}/secret`, { form: { csrf } });
  assert.equal(secret.status(), 403);
  const replaced = await reader.request.post(`${herald.base}/console/event-types/build:finished`, {
    form: { csrf, description: "changed", schema: "{}", example: "{}" },
  });
  assert.equal(replaced.status(), 403);
  await reader.context().close();

  // Revoking the token ends its session.
  const revoked = await newPage(browser);
  await signIn(revoked, herald.base, readToken);
  await admin.goto(herald.base + "/console/tokens");
  await admin.getByRole("button", { name: "Revoke auditor" }).click();
  await admin.getByText("Token revoked").waitFor();
  await revoked.goto(herald.base + "/console/webhooks");
  assert.match(revoked.url(), /\/\?next=/, "the revoked token's session ended");
  await revoked.context().close();
  await admin.context().close();
});

test("names, payloads and response bodies with markup are shown as text and run nothing", async () => {
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  const created = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/webhooks", {
    name: XSS.slice(0, 100), url: receiver.url + "/xss", event_types: ["build:finished"], project: "xss",
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  receiver.respond = { status: 500, body: XSS };
  const published = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/events", {
    type: "build:finished", project: "xss", payload: { id: 1, message: XSS },
  });
  assert.equal(published.status, 202);
  await page.goto(`${herald.base}/console/webhooks/${created.json.id}`);
  // The endpoint's 500 is logged; the delivery waits for its retry.
  await page.locator("#delivery-rows code", { hasText: "500" }).waitFor({ timeout: 20000 });
  receiver.respond = { status: 200, body: "ok from the test receiver" };
  await page.goto(herald.base + "/console/webhooks");
  await page.getByText(XSS.slice(0, 40)).first().waitFor();
  await assertClean(page);
  await page.goto(`${herald.base}/console/webhooks/${created.json.id}`);
  await assertClean(page);
  await page.locator("#delivery-rows a").first().click();
  await page.getByRole("heading", { name: /Attempt 1/ }).waitFor();
  // As pretty JSON, so its quotes are escaped; the tags are there as text.
  const payload = await page.locator("#payload").textContent();
  assert.ok(payload.includes("<script>window.__xss=1</script>") && payload.includes("<img src=x onerror="), payload);
  assert.ok((await page.locator("pre", { hasText: "onerror" }).count()) >= 2, "the response body is shown as text");
  await assertClean(page);
  await page.context().close();
});

test("a commit message with markup, matched by a type:commit monitor, is shown as text in the run log and its notification and runs nothing", async () => {
  const repo = gitRepository();
  const added = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/repositories", {
    name: "example.com/acme/xss", url: repo.dir,
  });
  assert.equal(added.status, 201, JSON.stringify(added.json));
  const fetched = await api(herald.base, ADMIN_TOKEN, "POST", `/api/v1/repositories/${added.json.id}/fetch`);
  assert.ok(fetched.status < 300, JSON.stringify(fetched.json));
  const monitor = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/monitors", {
    description: "Commit messages with markup",
    query: "type:commit onerror",
    actions: [{ type: "webhook", url: receiver.url + "/commit-xss" }],
  });
  assert.equal(monitor.status, 201, JSON.stringify(monitor.json));
  // Made after the monitor, so its run reports it.
  repo.commit("notes.txt", "harmless\n", `fix: escape ${XSS}`);
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(`${herald.base}/console/monitors/${monitor.json.id}`);
  await page.getByRole("button", { name: "Run now" }).click();
  await page.getByText(/Searched \d+ repositories now/).waitFor();
  const run = page.locator("#runs tbody tr", { hasText: "example.com/acme/xss" }).first();
  await run.waitFor();
  assert.equal((await run.locator("td.num .results").textContent()).trim(), "1", "the message matched");
  await assertClean(page);
  // The notification carries the commit's message: open it from the run log.
  await waitFor("the run's notification delivered", async () => {
    await page.goto(`${herald.base}/console/monitors/${monitor.json.id}`);
    return (await run.locator(".run-action .badge.succeeded").count()) === 1;
  });
  await run.locator(".run-action a").first().click();
  await page.locator("#payload", { hasText: "fix: escape" }).waitFor();
  const payload = await page.locator("#payload").textContent();
  assert.ok(payload.includes("<script>window.__xss=1</script>") && payload.includes("<img src=x onerror="), payload);
  await assertClean(page);
  repo.remove();
  await page.context().close();
});

test("a receiver: create it, copy its URL, post a signed GitHub push to it, see the request in its log", async () => {
  const { readFileSync } = await import("node:fs");
  const { createHmac, randomUUID } = await import("node:crypto");
  const { ROOT } = await import("./harness.js");
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(herald.base + "/console/receivers");
  await page.getByLabel("Code host", { exact: true }).selectOption("github");
  await page.getByLabel("Code host URL (URN)").fill("https://github.com");
  await page.getByLabel("Name", { exact: true }).fill("github.com");
  await page.getByRole("button", { name: "Create receiver" }).click();
  await page.getByRole("heading", { name: "github.com" }).waitFor();
  const secret = (await page.locator("#receiver-secret").textContent()).trim();
  await page.locator('button[data-copy="receiver-url"]').click();
  const url = (await page.evaluate(() => navigator.clipboard.readText())).trim();
  assert.equal(url, (await page.locator("#receiver-url").textContent()).trim());
  assert.match(url, /\/\.api\/webhooks\//);
  await screenshot(page, "receiver");

  // The GitHub fixture vendored in the repository (an unedited copy of a public test payload).
  const body = readFileSync(`${ROOT}/crates/herald-ingest/tests/fixtures/code-hosts/github/push.json`);
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  const posted = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": signature,
    },
    body,
  });
  assert.ok(posted.status < 300, `the receiver answered ${posted.status}`);
  // The log refreshes itself.
  await page.locator("#request-rows code", { hasText: "push" }).waitFor({ timeout: 20000 });
  await page.locator("#request-rows .badge.verified").waitFor();
  await page.locator("#request-rows a").first().click();
  await page.getByText("x-github-event", { exact: false }).first().waitFor();
  await screenshot(page, "receiver-request");
  await page.goto(herald.base + "/console/receivers");
  await screenshot(page, "receivers");
  await assertClean(page);
  // Deleted after confirming: its URL is gone.
  await page.getByRole("link", { name: "github.com" }).click();
  await page.getByRole("link", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Delete receiver" }).click();
  await page.getByText("Receiver deleted").waitFor();
  const gone = await fetch(url, { method: "POST", body: "{}" });
  assert.equal(gone.status, 404);
  await page.context().close();
});

test("receiver options: a GitHub receiver that accepts the legacy SHA-1 signature verifies one; an option for another host is refused", async () => {
  const { readFileSync } = await import("node:fs");
  const { createHmac, randomUUID } = await import("node:crypto");
  const { ROOT } = await import("./harness.js");
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(herald.base + "/console/receivers");
  // The GitHub option on a GitLab receiver: the application's refusal above the form, the choices kept.
  await page.getByLabel("Code host", { exact: true }).selectOption("gitlab");
  await page.getByLabel("Code host URL (URN)").fill("https://gitlab.com");
  await page.getByLabel(/also accept the SHA-1/).check();
  await page.getByRole("button", { name: "Create receiver" }).click();
  await page.locator(".flash.error", { hasText: "github_legacy_sha1" }).waitFor();
  assert.equal(await page.getByLabel(/also accept the SHA-1/).isChecked(), true);
  await page.getByLabel("Code host", { exact: true }).selectOption("github");
  await page.getByLabel("Code host URL (URN)").fill("https://ghe.example.com");
  await page.getByLabel("Name", { exact: true }).fill("old-ghe");
  await page.getByRole("button", { name: "Create receiver" }).click();
  await page.getByRole("heading", { name: "old-ghe" }).waitFor();
  await page.locator(".facts", { hasText: "X-Hub-Signature" }).waitFor();
  const secret = (await page.locator("#receiver-secret").textContent()).trim();
  const url = (await page.locator("#receiver-url").textContent()).trim();
  const body = readFileSync(`${ROOT}/crates/herald-ingest/tests/fixtures/code-hosts/github/push.json`);
  const posted = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": randomUUID(),
      "x-hub-signature": "sha1=" + createHmac("sha1", secret).update(body).digest("hex"),
    },
    body,
  });
  assert.ok(posted.status < 300, `the receiver answered ${posted.status}`);
  await page.locator("#request-rows .badge.verified").waitFor({ timeout: 20000 });
  await assertClean(page);
  await page.context().close();
});

test("a monitor: a bad query shows its error at its position as typed and when sent; fixed, it is created, run, edited (a Slack action added and removed) and its run log shows each action's status", async () => {
  const repo = gitRepository();
  const added = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/repositories", {
    name: "example.com/acme/app", url: repo.dir,
  });
  assert.equal(added.status, 201, JSON.stringify(added.json));
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(herald.base + "/console/monitors");
  await page.getByRole("button", { name: "Fetch example.com/acme/app now" }).click();
  await page.locator("#repositories tr", { hasText: "example.com/acme/app" }).locator("td", { hasText: "main" }).waitFor();
  await page.getByLabel("Description").fill("TODOs added");
  const query = page.getByLabel("Query");
  await query.fill("type:diff (TODO");
  // Checked as typed, by the script.
  await page.locator("#query-check .query-error mark").waitFor();
  await page.getByRole("heading", { name: "Create a monitor" }).scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollBy(0, document.querySelector("#query-check").getBoundingClientRect().bottom - 600));
  await screenshot(page, "monitor-query-error");
  await page.getByLabel("Action URL").fill(receiver.url + "/monitor");
  await page.getByRole("button", { name: "Create monitor" }).click();
  // And by the server, without the script's help.
  assert.equal(await page.locator("#query-check .query-error mark").count(), 1);
  assert.ok((await page.locator("#query-check .field-error").textContent()).length > 0);
  await query.fill("type:diff TODO");
  await page.locator("#query-check .query-ok").waitFor();
  await page.getByRole("button", { name: "Create monitor" }).click();
  await page.getByRole("heading", { name: "TODOs added" }).waitFor();
  const monitorUrl = herald.base + (await page.getByRole("link", { name: "Edit" }).getAttribute("href")).replace(/\/edit$/, "");
  // A new commit whose message and diff carry markup: it must show as text only.
  repo.commit("app.js", `// TODO: ship it ${XSS}\n`, `add a TODO ${XSS}`);
  await page.getByRole("button", { name: "Run now" }).click();
  await page.getByText(/Searched \d+ repositories now/).waitFor();
  const run = page.locator("#runs tbody tr", { hasText: "example.com/acme/app" }).first();
  await run.waitFor();
  assert.equal((await run.locator("td.num .results").textContent()).trim(), "1", "one result");
  const before = receiver.requests.length;
  await page.getByRole("button", { name: "Send test notification" }).click();
  await page.locator("#test-result .badge.succeeded").waitFor();
  assert.ok(receiver.requests.slice(before).some((r) => r.url === "/monitor"), "the action got a test notification");
  await page.getByRole("button", { name: "Disable" }).click();
  await page.locator(".facts .badge.disabled").waitFor();
  await page.getByRole("button", { name: "Enable" }).click();
  await page.locator(".facts .badge.enabled").waitFor();
  // The notification's payload, with the matched diff, in the action's delivery log.
  await page.locator(".facts a[href^='/console/webhooks/']").first().click();
  await page.locator("#delivery-rows a").first().waitFor({ timeout: 20000 });
  await page.locator("#delivery-rows a").first().click();
  await page.locator("#payload", { hasText: "TODO: ship it" }).waitFor();
  assert.ok((await page.locator("#payload").textContent()).includes("<script>window.__xss=1</script>"), "the diff is shown as text");
  await assertClean(page);

  // The run log: the action's status and the answer it got, as Sourcegraph shows it.
  const lastRun = page.locator("#runs tbody tr").first();
  await waitFor("the run's notification delivered", async () => {
    await page.goto(monitorUrl);
    return (await lastRun.locator(".run-action .badge.succeeded").count()) === 1;
  });
  assert.match(await lastRun.locator(".run-action").textContent(), /webhook.*succeeded.*HTTP 200/s);

  // Edited: a new description and a Slack action; a bad query is refused in the edit form at its position.
  await page.getByRole("link", { name: "Edit" }).click();
  await page.getByLabel("Query").fill("type:diff (TODO");
  await page.getByRole("button", { name: "Save monitor" }).click();
  await page.getByRole("heading", { name: "Edit monitor" }).waitFor();
  await page.locator("#query-check .query-error mark").waitFor();
  assert.equal(await page.locator("#query-check .query-error mark").count(), 1);
  await page.getByLabel("Query").fill("type:diff TODO");
  await page.locator("#query-check .query-ok").waitFor();
  await page.getByLabel("Description").fill("TODOs added, also to Slack");
  await page.getByLabel("Send a Slack message").check();
  await page.getByLabel("Action URL").fill(receiver.url + "/slack");
  await screenshot(page, "monitor-edit");
  await page.getByRole("button", { name: "Save monitor" }).click();
  await page.getByText("Monitor saved.").waitFor();
  await page.getByRole("heading", { name: "TODOs added, also to Slack" }).waitFor();
  await page.locator(".facts .tag", { hasText: "slack" }).waitFor();

  // The next run notifies both actions; each has its own status in the log.
  repo.commit("lib.js", "// TODO: and this\n", "another TODO");
  await page.getByRole("button", { name: "Run now" }).click();
  await page.getByText(/Searched \d+ repositories now/).waitFor();
  await waitFor("both actions delivered", async () => {
    await page.goto(monitorUrl);
    return (await lastRun.locator(".run-action .badge.succeeded").count()) === 2;
  });
  assert.match(await lastRun.locator(".run-action", { hasText: "slack" }).textContent(), /succeeded.*HTTP 200/s);
  const slack = receiver.requests.filter((r) => r.url === "/slack");
  assert.ok(slack.some((r) => r.body.includes("another TODO") || r.body.includes("TODO")), "Slack got the message");
  await screenshot(page, "monitor");
  await assertClean(page);

  // The Slack action removed again.
  await page.getByRole("link", { name: "Edit" }).click();
  await page.locator(".action-row", { hasText: "slack" }).getByLabel("Remove this action").check();
  await page.getByRole("button", { name: "Save monitor" }).click();
  await page.getByText("Monitor saved.").waitFor();
  assert.equal(await page.locator(".facts .tag", { hasText: "slack" }).count(), 0);
  assert.equal(await page.locator(".facts .tag", { hasText: "webhook" }).count(), 1);
  repo.remove();
  await page.goto(herald.base + "/console/event-types");
  await screenshot(page, "event-types");
  await assertClean(page);
  await page.context().close();
});

test("a webhook: edit it, disable and enable it from the list, recover its failed deliveries, delete it after confirming", async () => {
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  const created = await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/webhooks", {
    name: "to-change", url: receiver.url + "/change", event_types: ["build:finished"], project: "ops",
  });
  assert.equal(created.status, 201);
  const id = created.json.id;
  await page.goto(`${herald.base}/console/webhooks/${id}`);
  await page.getByRole("link", { name: "Edit" }).click();
  await page.getByLabel("Name", { exact: true }).fill("changed-name");
  await page.getByLabel("Patterns").fill("build:*");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Webhook saved.").waitFor();
  await page.getByRole("heading", { name: "changed-name" }).waitFor();
  const after = await api(herald.base, ADMIN_TOKEN, "GET", `/api/v1/webhooks/${id}`);
  assert.deepEqual(after.json.event_types.sort(), ["build:*", "build:finished"]);

  // A refused edit shows the application's reason next to the form.
  await page.getByRole("link", { name: "Edit" }).click();
  await page.getByLabel("Patterns").fill("no-such-family:*");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.locator(".flash.error").waitFor();

  await page.goto(herald.base + "/console/webhooks");
  await page.getByRole("button", { name: "Disable changed-name" }).click();
  await page.getByText("Webhook disabled").waitFor();
  assert.equal((await api(herald.base, ADMIN_TOKEN, "GET", `/api/v1/webhooks/${id}`)).json.enabled, false);
  await page.getByRole("button", { name: "Enable changed-name" }).click();
  await page.getByText("Webhook enabled.").waitFor();

  // A delivery that fails for good, then recovered from the webhook's page.
  receiver.respond = { status: 410, body: "gone" };
  await api(herald.base, ADMIN_TOKEN, "POST", "/api/v1/events", { type: "build:finished", project: "ops", payload: { id: 7 } });
  await waitFor("the 410", async () => {
    const hook = await api(herald.base, ADMIN_TOKEN, "GET", `/api/v1/webhooks/${id}`);
    return hook.json.enabled === false;
  });
  receiver.respond = { status: 200, body: "ok from the test receiver" };
  await page.goto(herald.base + "/console");
  const attention = page.locator("#attention tr", { hasText: "changed-name" });
  await attention.getByText("410").first().waitFor();
  assert.equal(await attention.locator(".badge.disabled").count(), 1, "the overview shows its health");
  // The 410 counted among the day's failures (the count is cached for seconds).
  await waitFor("the failed delivery counted", async () => {
    await page.goto(herald.base + "/console");
    return Number(await page.locator("#outcomes .stat").nth(1).locator(".value").textContent()) >= 1;
  });
  for (const figure of ["#outcomes .stat", "#backlog .stat"]) {
    assert.ok((await page.locator(figure).count()) >= 2, `${figure}: the overview's figures`);
    for (const link of await page.locator(figure).all()) {
      assert.ok(await link.getAttribute("href"), "every figure links to its list");
    }
  }
  await screenshot(page, "overview");
  // The list and the webhook's page show its health as a word, with why.
  await page.goto(herald.base + "/console/webhooks");
  const row = page.locator("#webhooks tbody tr", { hasText: "changed-name" });
  assert.match(await row.locator("td").nth(4).textContent(), /disabled.*410 Gone/s);
  await page.goto(`${herald.base}/console/webhooks/${id}`);
  assert.match(await page.locator("#health").textContent(), /disabled.*Why disabled.*410 Gone.*Last error/s);
  await screenshot(page, "webhook-health");
  await page.locator("#health").getByRole("button", { name: "Enable changed-name" }).click();
  await page.getByText("Webhook enabled.").waitFor();
  await page.goto(`${herald.base}/console/webhooks/${id}`);
  await page.locator("#health .badge.healthy").waitFor();
  await page.getByLabel("Failed since (UTC)").fill("2020-01-01T00:00");
  await page.getByRole("button", { name: "Recover failed deliveries" }).click();
  await page.getByText(/\d+ failed deliveries queued for another attempt/).waitFor();

  await page.getByRole("link", { name: "Delete" }).click();
  await page.getByRole("heading", { name: "Delete webhook changed-name?" }).waitFor();
  await page.getByRole("button", { name: "Delete webhook" }).click();
  await page.getByText("Webhook deleted").waitFor();
  assert.equal((await api(herald.base, ADMIN_TOKEN, "GET", `/api/v1/webhooks/${id}`)).status, 404);
  await assertClean(page);
  await page.context().close();
});

test("a webhook's delivery settings and order: set when creating, a refusal next to its field, changed and cleared when editing", async () => {
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(herald.base + "/console/webhooks/new");
  await page.getByLabel("Name", { exact: true }).fill("tuned");
  await page.getByLabel("Endpoint URL").fill(receiver.url + "/tuned");
  await page.getByRole("checkbox", { name: /build:finished/ }).check();
  await page.getByLabel("Pause after").fill("7");
  await page.getByLabel("Disable after").fill("0");
  await page.getByLabel("Most per second").fill("50");
  await page.getByLabel("Order", { exact: true }).selectOption("key");
  await page.getByRole("heading", { name: "Delivery", exact: true }).evaluate((h) => h.scrollIntoView({ block: "start" }));
  await screenshot(page, "webhook-settings");
  await page.getByRole("button", { name: "Create webhook" }).click();
  await page.getByRole("heading", { name: "Webhook tuned created" }).waitFor();
  const id = await webhookId("tuned");
  let hook = (await api(herald.base, ADMIN_TOKEN, "GET", `/api/v1/webhooks/${id}`)).json;
  assert.equal(hook.failing_after, 7);
  assert.equal(hook.disable_after, 0, "0: never disabled for failing");
  assert.equal(hook.max_in_flight, null);
  assert.equal(hook.max_per_second, 50);
  assert.equal(hook.ordering, "key");

  await page.goto(`${herald.base}/console/webhooks/${id}/edit`);
  assert.equal(await page.getByLabel("Pause after").inputValue(), "7", "the form shows the webhook's own");
  assert.equal(await page.getByLabel("Order", { exact: true }).inputValue(), "key");
  await page.getByLabel("Pause after").fill("0");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.locator("#error-failing_after").getByText(/failing_after must be from 1 to 10000/).waitFor();
  hook = (await api(herald.base, ADMIN_TOKEN, "GET", `/api/v1/webhooks/${id}`)).json;
  assert.equal(hook.failing_after, 7, "a refused form changes nothing");

  await page.getByLabel("Pause after").fill("5");
  await page.getByLabel("Most per second").fill("");
  await page.getByLabel("Most in flight").fill("3");
  await page.getByLabel("Order", { exact: true }).selectOption("none");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Webhook saved.").waitFor();
  hook = (await api(herald.base, ADMIN_TOKEN, "GET", `/api/v1/webhooks/${id}`)).json;
  assert.equal(hook.failing_after, 5);
  assert.equal(hook.disable_after, 0);
  assert.equal(hook.max_in_flight, 3);
  assert.equal(hook.max_per_second, null, "an emptied field returns to no limit of its own");
  assert.equal(hook.ordering, "none");
  await assertClean(page);
  await page.context().close();
});

test("the event catalogue: register a custom type, with the schema's refusal next to its field, replace it (refusals next to their fields), and delete it", async () => {
  const page = await newPage(browser);
  await signIn(page, herald.base, ADMIN_TOKEN);
  await page.goto(herald.base + "/console/event-types");
  await page.getByLabel("Key").fill("deploy:finished");
  await page.getByLabel("Description").fill("A deployment finished");
  await page.getByLabel("JSON Schema").fill('{"type": "object", "required": ["env"]}');
  await page.getByLabel("Example payload").fill('{"region": "eu"}');
  await page.getByRole("button", { name: "Register event type" }).click();
  // The example breaks the schema: said under the example field.
  const fault = page.locator("#type-example + .field-error");
  await fault.waitFor();
  assert.match(await fault.textContent(), /env/);
  await page.getByLabel("Example payload").fill('{"env": "prod"}');
  await page.getByRole("button", { name: "Register event type" }).click();
  await page.getByText("Event type registered.").waitFor();
  await page.getByRole("link", { name: "deploy:finished" }).click();
  await page.getByRole("heading", { name: "Example payload" }).waitFor();
  // Replaced: a schema that is not JSON is refused next to its field, the form keeping what was typed.
  await page.getByLabel("Description").fill("A deployment finished, with its duration");
  await page.getByLabel("JSON Schema").fill('{"type": "object", "required": ["env", "seconds"]');
  await page.getByRole("button", { name: "Replace event type" }).click();
  const schemaFault = page.locator("#type-schema + .field-error");
  await schemaFault.waitFor();
  assert.match(await schemaFault.textContent(), /schema/);
  assert.equal(await page.getByLabel("Description").inputValue(), "A deployment finished, with its duration");
  // An example the new schema refuses is said under the example.
  await page.getByLabel("JSON Schema").fill('{"type": "object", "required": ["env", "seconds"]}');
  await page.getByRole("button", { name: "Replace event type" }).click();
  await page.locator("#type-example + .field-error").waitFor();
  assert.match(await page.locator("#type-example + .field-error").textContent(), /seconds/);
  await page.getByLabel("Example payload").fill('{"env": "prod", "seconds": 42}');
  await page.getByRole("button", { name: "Replace event type" }).click();
  await page.getByText("Event type replaced.").waitFor();
  const replaced = await api(herald.base, ADMIN_TOKEN, "GET", "/api/v1/event-types/deploy:finished");
  assert.equal(replaced.json.description, "A deployment finished, with its duration");
  assert.deepEqual(replaced.json.example, { env: "prod", seconds: 42 });
  await screenshot(page, "event-type");
  // Built-in types have no replace form.
  await page.goto(herald.base + "/console/event-types/repo:push");
  await page.getByRole("heading", { name: "JSON Schema" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Replace event type" }).count(), 0);
  await page.goto(herald.base + "/console/event-types");
  await page.getByRole("button", { name: "Delete deploy:finished" }).click();
  await page.getByText("Event type deleted.").waitFor();
  assert.equal((await api(herald.base, ADMIN_TOKEN, "GET", "/api/v1/event-types/deploy:finished")).status, 404);
  await assertClean(page);
  await page.context().close();
});
