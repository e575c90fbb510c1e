// tests/ui/dashboard.mjs: the dashboard (/ui) end to end, in Debian's
// headless Chromium driven by playwright-core, against a real wf-server on
// 127.0.0.1 (a free port) and a database of its own in the throwaway
// PostgreSQL cluster of scripts/dev test.
//
//   node dashboard.mjs --modules DIR
//
// DIR holds node_modules with the pinned playwright-core (run-test.sh).
// Environment (set by ctest): WF_SERVER_BIN, WF_TEST_PLUGIN_DIR (the built
// test plugins), WF_UI_SCREENSHOT_DIR (where each page's screenshot goes),
// WF_TEST_DATABASE_URL (a superuser URL of the cluster; without it the
// test is skipped, exit 77).
//
// What it does, each wait bounded: checks the headers of the dashboard's
// files (Content-Type, CSP, Cache-Control, ETag and 304, public with a
// token set); deploys tests/plugins/engine_recorder.so to a project and
// starts its worker; then in the browser: the workers page shows the
// running worker and its pid; a run triggered through the API appears on
// the runs page and its step timeline fills, without a reload; a run
// waiting for a signal gets it from the run page's form and completes; a
// waiting run is cancelled from its page; a failed run (its activity failed
// after three attempts, which the timeline shows) is retried from its page
// and completes; keyset paging; the trigger form; the code page and an
// upload. Last, the server is restarted with WF_API_TOKEN set: the page
// asks for the token and works once it is entered, and keeps it in
// sessionStorage only. The page must never ask a host but the server (every
// request is checked), and no page error or CSP violation may occur. The
// event streams (/…/events) may be missing: the page then polls, and the
// test passes either way.

import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

const SKIP = 77;
const WAIT_MS = 20000;
const args = process.argv.slice(2);
if (args.length !== 2 || args[0] !== '--modules') {
  process.stderr.write('usage: node dashboard.mjs --modules DIR\n');
  process.exit(100);
}
const require = createRequire(path.join(path.resolve(args[1]), 'package.json'));
const { chromium } = require('playwright-core');

const adminUrl = process.env.WF_TEST_DATABASE_URL;
const serverBin = process.env.WF_SERVER_BIN;
const pluginDir = process.env.WF_TEST_PLUGIN_DIR;
const shotDir = process.env.WF_UI_SCREENSHOT_DIR || path.join(os.tmpdir(), 'wf-ui-screenshots');
if (!adminUrl) {
  console.log('dashboard: WF_TEST_DATABASE_URL is not set: skipped (run through scripts/dev test)');
  process.exit(SKIP);
}
if (!serverBin || !pluginDir) {
  console.error('dashboard: WF_SERVER_BIN and WF_TEST_PLUGIN_DIR are required');
  process.exit(100);
}

let passed = 0;
let failed = 0;
function check(ok, what) {
  if (ok) passed++;
  else failed++;
  console.log((ok ? 'ok   ' : 'FAIL ') + what);
  return ok;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Calls fn() every 100 ms until it returns a truthy value (returned), or
// throws after ms with what.
async function until(what, fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error('timed out after ' + ms + ' ms waiting for ' + what + (last ? ' (' + last.message + ')' : ''));
    await sleep(100);
  }
}

// ---- the database ----

function psqlBin() {
  for (const d of ['/usr/bin', ...fs.readdirSync('/usr/lib/postgresql').sort().reverse().map((v) => '/usr/lib/postgresql/' + v + '/bin')]) {
    if (fs.existsSync(d + '/psql')) return d + '/psql';
  }
  throw new Error('no psql');
}

const dbName = 'wf_t_ui_dashboard_' + process.pid;
function sql(text) {
  execFileSync(psqlBin(), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', adminUrl, '-c', text], { stdio: ['ignore', 'ignore', 'inherit'] });
}
function dbUrl() {
  const u = new URL(adminUrl);
  u.pathname = '/' + dbName;
  return u.toString();
}

// ---- the server ----

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-ui-test-'));
// The recorder plugin's activities write here; workers (perhaps another
// OS user) must be able to.
const rwDir = path.join('/tmp', 'wf-ui-rw-' + process.pid);
fs.rmSync(rwDir, { recursive: true, force: true });
fs.mkdirSync(rwDir, { mode: 0o777 });
fs.chmodSync(rwDir, 0o777);

let server = null;

async function startServer(extraEnv, tag) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(WF_|LOG_|PG)/.test(k) || k === 'DATABASE_URL' || k === 'PORT') continue;
    env[k] = v;
  }
  Object.assign(env, {
    PORT: '0',
    WF_LISTEN_ADDR: '127.0.0.1',
    DATABASE_URL: dbUrl(),
    LOG_FORMAT: 'text',
    LOG_LEVEL: 'info',
    WF_HOST_ID: 'uitest',
    WF_HEARTBEAT_MS: '200',
    WF_DRAIN_TIMEOUT_MS: '3000',
    WF_SANDBOX_RW_PATHS: rwDir,
  }, extraEnv);
  const logPath = path.join(tmp, 'server-' + tag + '.log');
  const log = fs.openSync(logPath, 'w');
  const child = spawn(serverBin, [], { env, detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const s = { child, logPath, exited: false, port: 0 };
  child.on('exit', () => (s.exited = true));
  server = s;
  s.port = await until('"listening on port" in ' + logPath, () => {
    if (s.exited) throw new Error('the server exited; log: ' + logPath);
    const m = /listening on port (\d+)/.exec(fs.readFileSync(logPath, 'utf8'));
    return m && Number(m[1]);
  });
  s.base = 'http://127.0.0.1:' + s.port;
  await until('/health', async () => (await fetch(s.base + '/health')).ok);
  return s;
}

async function stopServer(s) {
  if (!s || s.exited) return;
  try {
    process.kill(-s.child.pid, 'SIGTERM');
  } catch (e) {
    return;
  }
  try {
    await until('the server to exit', () => s.exited, 15000);
  } catch (e) {
    try {
      process.kill(-s.child.pid, 'SIGKILL');
    } catch (e2) {
      // gone
    }
  }
}

let token = '';
async function api(method, p, body, type) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  let data = body;
  if (body !== undefined && !type) {
    headers['Content-Type'] = 'application/json';
    data = JSON.stringify(body);
  } else if (type) headers['Content-Type'] = type;
  const res = await fetch(server.base + p, { method, headers, body: data });
  const text = await res.text();
  if (!res.ok) throw new Error(method + ' ' + p + ': ' + res.status + ' ' + text);
  return text ? JSON.parse(text) : null;
}

const trigger = (workflow, input) => api('POST', '/projects/ui/executions', { workflow, input });
const getRun = async (id) => (await api('GET', '/executions/' + id)).execution;

// ---- the browser ----

let context = null;
const foreign = []; // requests to anything but the server
const pageErrors = [];

async function openBrowser() {
  const profile = fs.mkdtempSync(path.join(tmp, 'chromium-'));
  // The flags are Chromium's own: no sandbox (root in CI), no GPU, and no
  // traffic of Chromium's own (updates, sync, QUIC probes).
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
    timeout: 60000,
  });
  context.setDefaultTimeout(WAIT_MS);
}

function watchPage(page) {
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return;
    if (!(u.hostname === '127.0.0.1' && Number(u.port) === server.port)) foreign.push(r.url());
  });
  page.on('pageerror', (e) => pageErrors.push('page error: ' + e.message));
  page.on('console', (m) => {
    // A refused stream (404 before the events land) is expected; a CSP
    // violation or a script error is not.
    if (m.type() === 'error' && !/status of (404|401)/.test(m.text()) && !/EventSource/.test(m.text())) pageErrors.push('console: ' + m.text());
  });
}

async function shot(page, name) {
  fs.mkdirSync(shotDir, { recursive: true });
  await page.screenshot({ path: path.join(shotDir, name + '.png'), fullPage: true });
}

const text = (page, sel) => page.locator(sel).first().innerText();

// ---- the checks ----

async function checkHeaders() {
  const r = await fetch(server.base + '/ui');
  const body = await r.text();
  check(r.status === 200 && /^text\/html/.test(r.headers.get('content-type')), 'GET /ui is text/html');
  check(body.includes('<script type="module" src="/ui/app.js">'), '/ui loads app.js as a module');
  const csp = r.headers.get('content-security-policy') || '';
  check(/default-src 'self'/.test(csp) && /script-src 'self'/.test(csp) && !/unsafe/.test(csp), 'the CSP is strict: ' + csp);
  check(r.headers.get('cache-control') === 'no-cache' && r.headers.get('x-content-type-options') === 'nosniff', 'Cache-Control no-cache, nosniff');
  const etag = r.headers.get('etag');
  const again = await fetch(server.base + '/ui', { headers: { 'If-None-Match': etag } });
  check(again.status === 304, 'If-None-Match with the ETag answers 304');
  const js = await fetch(server.base + '/ui/app.js');
  check(js.status === 200 && /^text\/javascript/.test(js.headers.get('content-type')), 'app.js is text/javascript');
  const css = await fetch(server.base + '/ui/app.css');
  check(css.status === 200 && /^text\/css/.test(css.headers.get('content-type')), 'app.css is text/css');
  const missing = await fetch(server.base + '/ui/nope.js');
  check(missing.status === 404, 'an unknown file is 404');
  const head = await fetch(server.base + '/ui/app.js', { method: 'HEAD' });
  check(head.status === 200, 'HEAD /ui/app.js answers 200');
}

async function setUp() {
  sql('DROP DATABASE IF EXISTS ' + dbName + ' WITH (FORCE)');
  sql('CREATE DATABASE ' + dbName);
  await startServer({}, 'open');
  await api('POST', '/projects', { id: 'ui', name: 'Dashboard test' });
  const so = fs.readFileSync(path.join(pluginDir, 'engine_recorder.so'));
  for (const wf of ['steps', 'waiter', 'retrying', 'sleepy', 'one-step', 'fan']) {
    await api('PUT', '/projects/ui/workflows/' + wf, so, 'application/octet-stream');
  }
  for (const act of ['record', 'flaky', 'noop']) {
    await api('PUT', '/projects/ui/activities/' + act, so, 'application/octet-stream');
  }
  await api('POST', '/workers/start', { projectId: 'ui' });
}

async function workersPage(page) {
  await page.goto(server.base + '/ui#/workers');
  const row = page.locator('tr[data-key="ui"]');
  await row.locator('.badge.s-running').waitFor();
  const st = await api('GET', '/workers/status/ui');
  await until('the pid on the workers page', async () => (await row.locator('td.pid').innerText()).trim() === String(st.pid));
  check(true, 'the workers page shows the running worker, pid ' + st.pid);
  await until('a heartbeat age', async () => /ago/.test(await row.locator('td.hb').innerText()));
  check(await row.locator('button[data-action=stop]').isVisible(), 'a running worker offers Stop');
  check(/\b0 runs?\b|\d+ runs?/.test(await row.locator('td.versions').innerText()), 'the code versions list their runs');
  await shot(page, 'workers');
  // A project made on the page, its worker started and stopped there.
  await page.click('details.panel summary');
  await page.fill('#new-project-id', 'ui-two');
  await page.click('details.panel button[type=submit]');
  const two = page.locator('tr[data-key="ui-two"]');
  await two.waitFor();
  check(true, 'a project created on the page is listed');
  await two.locator('button[data-action=start]').click();
  await two.locator('.badge.s-running').waitFor();
  check((await api('GET', '/workers/status/ui-two')).isRunning === true, 'Start starts the worker');
  await two.locator('button[data-action=restart]').click();
  await until('a restarted worker', async () => /restarted/i.test(await text(page, '#msg')));
  await two.locator('button[data-action=stop]').click();
  await two.locator('.badge.s-stopped').waitFor();
  check((await api('GET', '/workers/status/ui-two')).isRunning === false, 'Restart and Stop work');
}

async function runsAndTimeline(page) {
  await page.click('nav a[data-page=runs]');
  await page.locator('h1', { hasText: 'Runs of' }).waitFor();
  await page.evaluate(() => (window.__noReload = 1));
  const run = await trigger('steps', { dir: rwDir, n: 6, step_ms: 700 });
  const row = page.locator('tr[data-key="' + run.executionId + '"]');
  await row.waitFor();
  check(true, 'a run triggered through the API appears on the runs page');
  await row.locator('a').click();
  await page.locator('#run-input').waitFor();
  const counts = new Set();
  await until('the timeline to fill', async () => {
    const n = await page.locator('details.step').count();
    counts.add(n);
    return n === 6 && (await page.locator('h1 .badge').innerText()) === 'completed';
  }, 30000);
  check([...counts].some((n) => n > 0 && n < 6), 'the timeline filled step by step (seen: ' + [...counts].sort().join(', ') + ' steps)');
  check(await page.evaluate(() => window.__noReload === 1), 'no reload happened');
  await page.locator('details.step[data-seq="2"] summary').click();
  const out = await text(page, 'details.step[data-seq="2"] .step-output');
  check(/"step": 2/.test(out), 'a step\'s output is one click away');
  const bars = await page.locator('details.step .bar').evaluateAll((els) => els.map((e) => parseFloat(e.style.left)));
  check(bars.every((v, i) => i === 0 || v >= bars[i - 1]), 'the bars are placed in time order');
  check(/"sum": 6/.test(await text(page, '#run-output')), 'the output is shown');
  const mode = await page.locator('.live').getAttribute('data-mode');
  check(mode === 'polling' || mode === 'stream', 'live updates by ' + mode);
  await shot(page, 'run-steps');
}

async function sleepOnTimeline(page) {
  const run = await trigger('sleepy', { dir: rwDir, n: 2, sleep_ms: 800, step_ms: 200 });
  await page.goto(server.base + '/ui#/run/' + run.executionId);
  await page.locator('h1 .badge.s-completed').waitFor();
  await until('three steps', async () => (await page.locator('details.step').count()) === 3);
  const sleep = page.locator('details.step .bar.k-sleep');
  check((await sleep.count()) === 1, 'a sleep is on the timeline, drawn apart');
  const width = await sleep.evaluate((e) => parseFloat(e.style.width));
  check(width > 30, 'the sleep spans its time on the axis (' + Math.round(width) + '%)');
  await shot(page, 'run-sleep');
}

async function signalFromPage(page) {
  const run = await trigger('waiter', { dir: rwDir, n: 4, signal: 'approval', step_ms: 300 });
  await page.goto(server.base + '/ui#/run/' + run.executionId);
  await page.locator('h1 .badge.s-waiting').waitFor();
  await until('the waited-for signal offered', async () => (await page.inputValue('#sig-name')) === 'approval');
  await shot(page, 'run-waiting');
  await page.fill('#sig-payload', '{"approved": true, "by": "ui-test"}');
  await page.click('form.signal button[type=submit]');
  await page.locator('h1 .badge.s-completed').waitFor();
  check(/"by": "ui-test"/.test(await text(page, '#run-output')), 'a signal sent from the run page completes the run with its payload');
  check((await page.locator('details.step .bar.k-signal').count()) === 1, 'the signal wait is on the timeline');
  await shot(page, 'run-page');
}

async function cancelFromPage(page) {
  const run = await trigger('waiter', { dir: rwDir, n: 2, signal: 'never' });
  await page.goto(server.base + '/ui#/run/' + run.executionId);
  await page.locator('h1 .badge.s-waiting').waitFor();
  await page.click('button:has-text("Cancel run")');
  await page.locator('h1 .badge.s-cancelled').waitFor();
  check((await getRun(run.executionId)).status === 'cancelled', 'a run cancelled from its page is cancelled');
  check(await page.locator('button:has-text("Cancel run")').isDisabled(), 'an ended run offers no cancel');
}

async function retryFromPage(page) {
  const run = await trigger('retrying', { dir: rwDir, key: 'ui-' + process.pid, failures: 3 });
  await page.goto(server.base + '/ui#/run/' + run.executionId);
  await page.locator('h1 .badge.s-failed').waitFor();
  check(/flaky failure 3/.test(await text(page, '#run-error')), 'the failed run shows its error');
  check(/3 attempts/.test(await text(page, '.timeline')), 'the timeline shows the step\'s three attempts');
  await shot(page, 'run-failed');
  await page.click('button:has-text("Retry run")');
  await page.locator('h1 .badge.s-completed').waitFor();
  check(/"calls": 4/.test(await text(page, '#run-output')), 'a run retried from its page completes');
}

async function pagingAndFilters(page) {
  for (let i = 0; i < 26; i++) await trigger('one-step', {});
  await page.goto(server.base + '/ui#/runs/ui');
  await page.locator('tbody tr').first().waitFor();
  await until('a full first page', async () => (await page.locator('table.runs tbody tr').count()) === 25);
  const first = await page.locator('table.runs tbody tr').first().getAttribute('data-key');
  await until('Older to be offered', async () => page.locator('button:has-text("Older")').isEnabled());
  await page.click('button:has-text("Older")');
  await until('page 2', async () => /Page 2/.test(await text(page, '.pager')));
  const second = await page.locator('table.runs tbody tr').first().getAttribute('data-key');
  check(second !== first, 'Older shows the next page (keyset cursor)');
  await page.click('button:has-text("Newer")');
  await until('page 1 again', async () => /Page 1/.test(await text(page, '.pager')));
  await page.selectOption('#f-status', 'failed');
  await until('the status filter', async () => /status=failed/.test(page.url()));
  await until('only failed runs', async () => {
    const s = await page.locator('table.runs tbody .badge').allInnerTexts();
    return s.length === 0 || s.every((x) => x === 'failed');
  });
  check(true, 'the status filter is applied and kept in the URL');
  await page.selectOption('#f-status', '');
  await until('the filter dropped', async () => !/status=/.test(page.url()));
  await page.locator('#f-workflow option[value="waiter"]').waitFor({ state: 'attached' });
  await page.selectOption('#f-workflow', 'waiter');
  await until('only waiter runs', async () => {
    const w = await page.locator('table.runs tbody td.wf').allInnerTexts();
    return w.length === 2 && w.every((x) => x === 'waiter');
  });
  check(true, 'the workflow filter is applied');
  await shot(page, 'runs');
}

async function triggerForm(page) {
  await page.goto(server.base + '/ui#/runs/ui');
  await page.click('#trigger summary');
  await page.locator('#t-workflow option[value="steps"]').waitFor({ state: 'attached' });
  await page.selectOption('#t-workflow', 'steps');
  await page.fill('#t-input', JSON.stringify({ dir: rwDir, n: 2 }));
  await page.click('#trigger button[type=submit]');
  const link = page.locator('#trigger a[href^="#/run/"]');
  await link.waitFor();
  const id = (await link.getAttribute('href')).slice('#/run/'.length);
  await until('the run started from the form to complete', async () => (await getRun(id)).status === 'completed');
  check(true, 'the trigger form starts a run');
}

// A fan-out (engine_recorder's fan: two child runs of steps): the join
// lists its children, a child links back to its parent, and the runs page
// lists a run's children alone.
async function childRuns(page) {
  const run = await trigger('fan', { dir: rwDir, k: 2, n: 1 });
  await page.goto(server.base + '/ui#/run/' + run.executionId);
  await until('the fan-out to complete', async () => (await page.locator('h1 .badge').innerText()) === 'completed', 30000);
  const join = page.locator('details.step').first();
  check(/children/.test(await join.locator('summary').innerText()), 'the join is a step of kind children');
  await join.locator('summary').click();
  await until('the children listed', async () => (await join.locator('ul.kids a').count()) === 2);
  check(true, 'the join lists its two child runs');
  await join.locator('ul.kids a').first().click();
  await page.locator('#parent').waitFor();
  check((await page.locator('h1').innerText()).startsWith('steps'), 'a child run opens, and names its parent');
  await page.click('#parent');
  await page.locator('details.step').first().locator('summary').click();
  await page.click('a.kids-all');
  await page.locator('#parent-filter').waitFor();
  await until('the two child rows', async () => (await page.locator('table.runs tbody tr').count()) === 2);
  check(true, 'the runs page lists the child runs of a run alone');
  await page.click('#parent-filter a:has-text("all runs")');
  await page.locator('#f-top').check();
  await until('the top-level filter in the URL', async () => /parent=none/.test(page.url()));
  await until('no child row', async () => {
    const ids = await page.locator('table.runs tbody tr th a').evaluateAll((els) => els.map((e) => e.title));
    if (!ids.length) return false;
    for (const id of ids) if ((await getRun(id)).parentId !== null) return false;
    return true;
  });
  check(true, 'the top-level filter hides child runs');
  await shot(page, 'child-runs');
}

async function codePage(page) {
  await page.click('nav a[data-page=code]');
  await page.locator('h1', { hasText: 'Code of' }).waitFor();
  const steps = page.locator('table:has(caption:text("Workflows")) tr[data-key="steps"]');
  await until('the steps workflow listed as loaded', async () => /yes/.test(await steps.innerText()));
  check(true, 'the code page lists the deployed workflows and what the worker loaded');
  // A plugin of its own (tests/plugins/good.so: hello-flow), whose names
  // do not clash with the recorder's, deployed twice: version 1, then 2.
  const hello = page.locator('table:has(caption:text("Workflows")) tr[data-key="hello-flow"]');
  for (const [so, version] of [['good.so', 1], ['good_v2.so', 2]]) {
    await page.selectOption('#u-kind', 'workflows');
    await page.fill('#u-name', 'hello-flow');
    await page.setInputFiles('#u-file', path.join(pluginDir, so));
    await page.click('form.stack button[type=submit]');
    await until('the upload of ' + so, async () => new RegExp('version ' + version).test(await text(page, '.upload-result')));
    await until('version ' + version + ' listed', async () => (await hello.locator('td').first().innerText()).trim() === String(version));
  }
  check(true, 'an uploaded .so is deployed, and again as a new version');
  check(/older version|no/.test(await hello.locator('td').last().innerText()), 'the worker has not loaded it yet');
  await shot(page, 'code');
  await page.click('button:has-text("Restart the worker")');
  await until('the worker to load hello-flow', async () => /^yes/.test(await hello.locator('td').last().innerText()), 30000);
  check(true, 'the restart button loads the new version');
}

async function labelled(page) {
  const bad = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
    .map((e) => e.outerHTML.slice(0, 80)));
  return bad;
}

async function withToken() {
  await stopServer(server);
  token = 'ui-test-token-' + process.pid;
  await startServer({ WF_API_TOKEN: token }, 'token');
  const noAuth = await fetch(server.base + '/projects');
  check(noAuth.status === 401, 'with WF_API_TOKEN the API needs the token');
  const ui = await fetch(server.base + '/ui/app.js');
  check(ui.status === 200, 'the dashboard\'s files need no token');
  const page = await context.newPage();
  watchPage(page);
  await page.goto(server.base + '/ui');
  await page.locator('#token-dialog[open]').waitFor();
  check(true, 'the page asks for the token');
  await shot(page, 'token');
  await page.fill('#token-input', token);
  await page.click('#token-form button[value=use]');
  await page.locator('tr[data-key="ui"]').waitFor();
  check(true, 'with the token entered the workers page works');
  const kept = await page.evaluate(() => ({ s: sessionStorage.getItem('wf.token'), c: document.cookie, u: location.href }));
  check(kept.s === token && kept.c === '' && !kept.u.includes(token), 'the token is in sessionStorage only');
  await page.click('nav a[data-page=runs]');
  await page.locator('table.runs tbody tr').first().waitFor();
  check(true, 'the runs page works with the token');
  // With a token the stream is read with fetch() (EventSource sends no
  // header); either way the page stays live.
  const run = await trigger('steps', { dir: rwDir, n: 1 });
  await page.locator('tr[data-key="' + run.executionId + '"]').waitFor();
  const mode = await page.locator('.live').getAttribute('data-mode');
  check(mode === 'polling' || mode === 'stream', 'with the token the runs page is live by ' + mode);
  await page.close();
}

async function main() {
  await setUp();
  await checkHeaders();
  await openBrowser();
  const page = await context.newPage();
  watchPage(page);
  await workersPage(page);
  await runsAndTimeline(page);
  await sleepOnTimeline(page);
  await signalFromPage(page);
  await cancelFromPage(page);
  await retryFromPage(page);
  await pagingAndFilters(page);
  await triggerForm(page);
  await childRuns(page);
  await codePage(page);
  const bad = await labelled(page);
  check(bad.length === 0, 'every control has a label' + (bad.length ? ': ' + bad.join(' | ') : ''));
  await page.close();
  await withToken();
  check(foreign.length === 0, 'no request to another host' + (foreign.length ? ': ' + foreign.join(', ') : ''));
  check(pageErrors.length === 0, 'no page error or CSP violation' + (pageErrors.length ? ': ' + pageErrors.join(' | ') : ''));
}

let status = 0;
try {
  await main();
} catch (e) {
  check(false, e.stack || String(e));
  if (server) {
    const log = fs.readFileSync(server.logPath, 'utf8').split('\n');
    console.log('---- server log, last 40 lines ----\n' + log.slice(-40).join('\n'));
  }
}
try {
  if (context) await context.close();
} catch (e) {
  // closing a crashed browser
}
await stopServer(server);
try {
  sql('DROP DATABASE IF EXISTS ' + dbName + ' WITH (FORCE)');
} catch (e) {
  console.log('could not drop ' + dbName);
}
fs.rmSync(rwDir, { recursive: true, force: true });
if (failed === 0) fs.rmSync(tmp, { recursive: true, force: true });
else console.log('kept ' + tmp + ' (server logs)');
console.log('screenshots in ' + shotDir);
console.log(passed + ' passed, ' + failed + ' failed');
status = failed === 0 ? 0 : 1;
process.exit(status);
