// app.js: the dashboard's shell. Hash routes, one module per page:
//
//   #/workers               every project's worker (workers.js)
//   #/runs/<project>?status=&workflow=   a project's runs (runs.js)
//   #/run/<executionId>     one run and its step timeline (run.js)
//   #/code/<project>        deployed workflows and activities (code.js)
//
// A page module exports render(main, ctx) and returns a function that stops
// whatever it keeps running (its live watch). ctx has the route's params
// and query, the chosen project and say() for messages. The shell also owns
// the token dialog: any call answered 401 opens it (api.js).

import { call, setToken, token, enc } from './api.js';
import { h, fill, parseQuery } from './dom.js';
import * as workers from './workers.js';
import * as runs from './runs.js';
import * as run from './run.js';
import * as code from './code.js';

const main = document.getElementById('main');
const msg = document.getElementById('msg');
const projectSel = document.getElementById('project');
const dialog = document.getElementById('token-dialog');
const tokenForm = document.getElementById('token-form');
const tokenInput = document.getElementById('token-input');
const tokenNote = document.getElementById('token-note');
const tokenButton = document.getElementById('token-button');
const PROJECT_KEY = 'wf.project';

let stopPage = () => {};

// A message in the status line (read out by screen readers).
export function say(text, kind) {
  msg.className = kind || '';
  msg.textContent = text;
}

function project() {
  return sessionStorage.getItem(PROJECT_KEY) || '';
}

function setProject(p) {
  if (p) sessionStorage.setItem(PROJECT_KEY, p);
}

// Refills the project chooser from GET /projects.
async function loadProjects() {
  let list = [];
  try {
    list = (await call('GET', '/projects')).projects || [];
  } catch (e) {
    return;
  }
  const cur = project() || (list[0] && list[0].id) || '';
  setProject(cur);
  fill(
    projectSel,
    list.length ? null : h('option', { value: '' }, '(no project)'),
    list.map((p) => h('option', { value: p.id, selected: p.id === cur }, p.name === p.id ? p.id : p.id + ' – ' + p.name)),
  );
}

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'workers', arg: parts[1] || '', query: parseQuery(query) };
}

const pages = { workers, runs, run, code };

function route() {
  stopPage();
  stopPage = () => {};
  const r = parseRoute();
  const mod = pages[r.page];
  if (!mod) {
    location.hash = '#/workers';
    return;
  }
  if ((r.page === 'runs' || r.page === 'code') && !r.arg) {
    if (project()) {
      location.replace('#/' + r.page + '/' + enc(project()));
      return;
    }
  }
  if ((r.page === 'runs' || r.page === 'code') && r.arg && r.arg !== project()) {
    setProject(r.arg);
    projectSel.value = r.arg;
  }
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    if (a.dataset.page === r.page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    if (a.dataset.page !== 'workers') a.href = '#/' + a.dataset.page + '/' + enc(project());
  }
  say('');
  fill(main);
  stopPage = mod.render(main, { arg: r.arg, query: r.query, project: project(), say, reloadProjects: loadProjects }) || (() => {});
  main.focus({ preventScroll: true });
}

projectSel.addEventListener('change', () => {
  setProject(projectSel.value);
  const r = parseRoute();
  location.hash = '#/' + (r.page === 'code' ? 'code' : 'runs') + '/' + enc(projectSel.value);
});

// ---- the token dialog ----

// Set when the dialog is dismissed (Escape): calls answered 401 then do
// not open it again each second; the "API token" button still does.
let dismissed = false;
dialog.addEventListener('cancel', () => (dismissed = true));

function askToken(note) {
  if (dialog.open) return;
  dismissed = false;
  tokenNote.textContent = note;
  tokenInput.value = '';
  dialog.showModal();
  tokenInput.focus();
}

window.addEventListener('wf-auth-needed', () => {
  if (dismissed) return;
  askToken(token() ? 'The server refused this token. Enter the right one.' : 'This server needs its API token (WF_API_TOKEN).');
});

tokenForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = tokenInput.value.trim();
  if (ev.submitter && ev.submitter.value === 'forget') setToken('');
  else if (v) setToken(v);
  dialog.close();
  loadProjects().then(route);
});

tokenButton.addEventListener('click', () => askToken(token() ? 'A token is set for this tab. Enter another, or forget it.' : 'Enter the API token, if the server has one.'));

window.addEventListener('hashchange', route);
loadProjects().then(route);
