// The browser test's driver. It starts Missive on 127.0.0.1 with a fresh SQLite database and
// `--cors-allowed-origins http://localhost:<pagePort>`, serves the page (index.html and the
// bundled app.js) from that origin, and loads it in headless Chromium (playwright-core
// driving Debian's /usr/bin/chromium). It asserts on what the page shows, then loads the same
// page from two origins that are not in the list and asserts the browser refused them.
//
// It needs what tests/browser.rs prepares: target/browser-node/node_modules (npm ci) and
// target/browser-node/www/app.js (buf generate, then esbuild). Then, from anywhere:
//
//   MISSIVE_BIN=target/debug/missive node tests/browser/run.mjs
//
// Exits 0 when every check passes; otherwise 1, printing the failed checks, the pages'
// consoles and Missive's log. A watchdog stops everything after WATCHDOG_MS.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const WATCHDOG_MS = 90_000;
const PAGE_TIMEOUT_MS = 20_000;

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const nodeDir = join(root, "target", "browser-node");
const missiveBin = resolve(root, process.env.MISSIVE_BIN ?? "target/debug/missive");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const { chromium } = createRequire(join(nodeDir, "package.json"))("playwright-core");

const started = Date.now();
const log = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);

const failures = [];
function check(condition, what) {
  log(`${condition ? "ok  " : "FAIL"} ${what}`);
  if (!condition) failures.push(what);
}

// What to undo on the way out, last first; children are also killed if node exits abruptly.
const cleanups = [];
const children = new Set();
async function cleanUp() {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()();
    } catch (error) {
      console.error(`clean-up: ${error}`);
    }
  }
}
process.on("exit", () => children.forEach((child) => child.kill("SIGKILL")));

/** What Missive printed (its log), shown when something fails. */
let missiveOutput = "";

async function finish() {
  clearTimeout(watchdog);
  await Promise.race([cleanUp(), new Promise((done) => setTimeout(done, 10_000))]);
  if (failures.length === 0) {
    log("browser test passed");
    process.exit(0);
  }
  console.error(`--- missive's log\n${missiveOutput}`);
  console.error(`FAILED: ${failures.length} check(s):\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
const watchdog = setTimeout(() => {
  failures.push(`still running after ${WATCHDOG_MS / 1000} s`);
  finish();
}, WATCHDOG_MS);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    failures.push(`interrupted by ${signal}`);
    finish();
  });
}

/** `missive keys create --role admin`: only the key is on stdout. */
function createAdminKey(databaseUrl, env) {
  const args = ["keys", "create", "--role", "admin", "--database-url", databaseUrl];
  const out = spawnSync(missiveBin, args, { env, encoding: "utf8", timeout: 30_000 });
  const key = out.stdout?.trim() ?? "";
  if (out.status !== 0 || !/^msk_\S+$/.test(key)) {
    throw new Error(`${missiveBin} keys create failed (${out.error ?? out.status}):\n${out.stdout}${out.stderr}`);
  }
  return key;
}

/** Starts Missive on a free port; resolves with its address once it says it is serving. */
function startMissive(databaseUrl, allowedOrigins, env) {
  const args = ["--listen", "127.0.0.1:0", "--database-url", databaseUrl, "--cors-allowed-origins", allowedOrigins];
  const child = spawn(missiveBin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  cleanups.push(() => stopProcess(child));
  return new Promise((resolveAddress, reject) => {
    const timer = setTimeout(() => reject(new Error("missive did not say it is serving within 30 s")), 30_000);
    const onOutput = (chunk) => {
      missiveOutput += chunk;
      const serving = /missive is serving addr=(\S+)/.exec(missiveOutput);
      if (serving) {
        clearTimeout(timer);
        resolveAddress(serving[1]);
      }
    };
    child.stdout.on("data", onOutput);
    child.stderr.on("data", onOutput);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`missive exited (${code ?? signal})`));
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s. */
function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(kill);
      done();
    });
    child.kill("SIGTERM");
  });
}

/** Serves index.html and the bundled app.js on 127.0.0.1:<a free port>; returns the port. */
async function startPageServer() {
  const files = {
    "/": ["text/html; charset=utf-8", readFileSync(join(here, "index.html"))],
    "/app.js": ["text/javascript; charset=utf-8", readFileSync(join(nodeDir, "www", "app.js"))],
  };
  const server = createServer((request, response) => {
    const file = files[new URL(request.url, "http://page").pathname];
    if (file) {
      response.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise((listening) => server.listen(0, "127.0.0.1", listening));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((closed) => server.close(closed));
  });
  return server.address().port;
}

/**
 * Opens the page at `origin` in a fresh browser context and waits until it says it is done.
 * Returns what it shows: { done, order: [step…], steps: { step: text }, console: [line…] }.
 */
async function runPage(browser, origin, query) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const consoleLines = [];
    page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => consoleLines.push(`pageerror: ${error}`));
    await page.goto(`${origin}/?${new URLSearchParams(query)}`, { timeout: PAGE_TIMEOUT_MS });
    let done;
    try {
      await page.waitForFunction(() => document.getElementById("done").textContent !== "", null, {
        timeout: PAGE_TIMEOUT_MS,
      });
      done = await page.textContent("#done");
    } catch (error) {
      done = `not done after ${PAGE_TIMEOUT_MS / 1000} s (${error.message.split("\n")[0]})`;
    }
    const shown = await page.$$eval("li[data-step]", (items) =>
      items.map((item) => [item.dataset.step, item.textContent]),
    );
    log(`page at ${origin}: ${done}`);
    for (const [name, text] of shown) log(`    ${name}: ${text}`);
    return { done, order: shown.map(([name]) => name), steps: Object.fromEntries(shown), console: consoleLines };
  } finally {
    await context.close();
  }
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "missive-browser-"));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  // Missive reads only its flags: no MISSIVE_* setting of the caller's environment applies.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("MISSIVE_")));
  env.NO_COLOR = "1";
  const databaseUrl = `sqlite:${join(work, "missive.db")}`;

  // The page server listens on 127.0.0.1: http://localhost:<pagePort> and
  // http://127.0.0.1:<pagePort> are two origins of it (they differ by host). A second
  // server gives a third origin, http://localhost:<otherPort> (it differs by port).
  const pagePort = await startPageServer();
  const otherPort = await startPageServer();
  const allowed = `http://localhost:${pagePort}`;

  const key = createAdminKey(databaseUrl, env);
  const server = await startMissive(databaseUrl, allowed, env);
  log(`missive on ${server}, CORS allowing ${allowed} only`);

  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"], timeout: 30_000 });
  cleanups.push(() => browser.close());
  log(`chromium ${browser.version()}`);

  // 1. The web app on the allowed origin: every call works across origins.
  const content = "Is the truck still available? Prix : 42 000 € 🚚";
  const query = { server: `http://${server}`, key, content };
  const app = await runPage(browser, allowed, query);
  const { steps } = app;
  const sent = /^ok (msg_\S+) #1 (.*)$/.exec(steps.send ?? "");
  const id = sent?.[1] ?? "(no message id)";
  check(app.done === "passed", `the page ran to the end (${app.done})`);
  check(/^ok usr_\S+ ADMIN$/.test(steps.caller ?? ""), "GetCaller answers the admin");
  check(/^ok buyer=usr_\S+ seller=usr_\S+$/.test(steps.users ?? ""), "CreateUser made a buyer and a seller");
  check(
    /^ok buyer=3-part JWT until \d+ seller=3-part JWT until \d+$/.test(steps.tokens ?? ""),
    "CreateUserToken made a token for each, and the page calls with them",
  );
  check(/^ok conv_\S+$/.test(steps.conversation ?? ""), "the buyer created a conversation");
  check(/^ok HEARTBEAT at cursor \S+$/.test(steps.subscribe ?? ""), "the seller's Subscribe stream opened with a heartbeat");
  check(sent?.[2] === content, "the buyer sent the message, its content intact");
  check(steps.list === `ok 1 message(s): ${id} #1 ${content}`, "the seller lists exactly that message");
  const event = /^ok MESSAGE_CREATED (msg_\S+) at cursor \S+ (.*)$/.exec(steps.event ?? "");
  check(event?.[1] === id && event[2] === content, "the open stream delivered MESSAGE_CREATED with that message");
  // An error answered at once is "trailers-only": grpc-status, grpc-message and
  // grpc-status-details-bin are HTTP headers, which a page on another origin can read only
  // when the server exposes them (Access-Control-Expose-Headers).
  check(/^error NotFound: \S/.test(steps["not-found"] ?? ""), "a missing conversation reads as NotFound, with its message");
  check(
    /^error InvalidArgument: .*content.* \[details: (.*, )?google\.rpc\.BadRequest(, .*)?\]$/.test(steps.invalid ?? ""),
    "an empty message reads as InvalidArgument naming content, with its google.rpc.BadRequest detail",
  );
  check(/^error Unauthenticated: \S/.test(steps.unauthenticated ?? ""), "a bad key reads as Unauthenticated");
  if (failures.length > 0) console.log(`--- the console of the page at ${allowed}\n${app.console.join("\n")}`);

  // 2. The same page on origins not in the list: the browser refuses the first call (the
  // preflight gets no Access-Control-Allow-Origin), so the page stops there; fetch does not
  // say why, Chromium's console does.
  for (const origin of [`http://127.0.0.1:${pagePort}`, `http://localhost:${otherPort}`]) {
    const refused = await runPage(browser, origin, query);
    const before = failures.length;
    check(
      refused.done === "stopped at caller" &&
        refused.order.join(",") === "caller" &&
        /^error Unknown: Failed to fetch/.test(refused.steps.caller ?? ""),
      `from ${origin} the first call fails in the browser and nothing else runs`,
    );
    check(
      refused.console.some((line) => line.includes("blocked by CORS policy")),
      `from ${origin} Chromium reports the call blocked by CORS policy`,
    );
    if (failures.length > before) console.log(`--- the console of the page at ${origin}\n${refused.console.join("\n")}`);
  }
}

main()
  .catch((error) => failures.push(`${error.stack ?? error}`))
  .finally(finish);
