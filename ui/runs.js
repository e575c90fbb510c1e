// runs.js: a project's runs (GET /projects/{id}/executions), newest first,
// filtered by status, workflow and parent run, or to top-level runs (kept
// in the route's query, so a view can
// be bookmarked), a page at a time with the server's keyset cursor
// (nextCursor: "Older" follows it, "Newer" goes back along the cursors
// seen). The page shown stays current (live.js, /projects/{id}/events).
// Also the form that starts a run (POST /projects/{id}/executions).

import { call, enc } from './api.js';
import { h, fill, syncRows, badge, shortId, time, dur } from './dom.js';
import { watch } from './live.js';

const STATUSES = ['pending', 'running', 'sleeping', 'waiting', 'completed', 'failed', 'cancelled'];

export function render(main, ctx) {
  const pid = ctx.arg;
  if (!pid) {
    main.append(h('h1', {}, 'Runs'), h('p', {}, 'No project yet: create one on the ', h('a', { href: '#/workers' }, 'workers page'), '.'));
    return null;
  }
  const q = ctx.query;
  const cursors = ['']; // the cursor of each page from the first to the one shown
  const tbody = h('tbody');
  const pageNote = h('span.hint');
  const liveNote = h('span.live', { 'aria-live': 'off' }, 'connecting…');
  const statusSel = h('select#f-status', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s, selected: q.status === s }, s)));
  const wfSel = h('select#f-workflow', { name: 'workflow' }, h('option', { value: '' }, 'any'));
  const topBox = h('input#f-top', { type: 'checkbox', name: 'top', checked: q.parent === 'none' });
  const newer = h('button', { type: 'button', disabled: true, onclick: () => page(-1) }, '← Newer');
  const older = h('button', { type: 'button', disabled: true, onclick: () => page(1) }, 'Older →');
  let next = null;

  // the trigger form
  const tWf = h('select#t-workflow', { name: 'workflow', required: true });
  const tInput = h('textarea#t-input', { name: 'input', rows: 4, spellcheck: 'false' }, '{}');
  const tKey = h('input#t-key', { name: 'idempotencyKey', placeholder: 'optional' });
  const tResult = h('p.hint', { role: 'status' });

  main.append(
    h('h1', {}, 'Runs of ', h('code', {}, pid)),
    ...(q.parent && q.parent !== 'none' ? [h('p.hint#parent-filter', {}, 'Only the child runs of ', h('a', { href: '#/run/' + enc(q.parent) }, shortId(q.parent)), ' (',
      h('a', { href: '#/runs/' + enc(pid) }, 'all runs'), ').')] : []),
    h('form.inline.filters', { onsubmit: applyFilters, onchange: applyFilters, 'aria-label': 'Filter runs' },
      h('label', { for: 'f-status' }, 'Status'), statusSel,
      h('label', { for: 'f-workflow' }, 'Workflow'), wfSel,
      topBox, h('label', { for: 'f-top' }, 'Top-level runs only'),
      liveNote),
    h('table.grid.runs', {},
      h('thead', {}, h('tr', {}, ['Run', 'Workflow', 'Status', 'Created', 'Duration', 'Attempt', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody),
    h('div.pager', {}, newer, older, pageNote),
    h('details.panel#trigger', {},
      h('summary', {}, 'Start a run'),
      h('form.stack', { onsubmit: trigger },
        h('label', { for: 't-workflow' }, 'Workflow'), tWf,
        h('label', { for: 't-input' }, 'Input (JSON)'), tInput,
        h('label', { for: 't-key' }, 'Idempotency key'), tKey,
        h('div.row', {}, h('button', { type: 'submit' }, 'Start run')),
        tResult)),
  );

  call('GET', '/projects/' + enc(pid) + '/workflows')
    .then((r) => {
      const names = (r.workflows || []).filter((w) => w.active).map((w) => w.name).sort();
      wfSel.append(...names.map((n) => h('option', { value: n, selected: q.workflow === n }, n)));
      if (q.workflow && !names.includes(q.workflow)) wfSel.append(h('option', { value: q.workflow, selected: true }, q.workflow));
      fill(tWf, names.map((n) => h('option', { value: n }, n)));
    })
    .catch((e) => ctx.say('Could not read the workflows: ' + e.message, 'error'));

  function applyFilters(ev) {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (statusSel.value) p.set('status', statusSel.value);
    if (wfSel.value) p.set('workflow', wfSel.value);
    if (topBox.checked) p.set('parent', 'none');
    else if (q.parent && q.parent !== 'none') p.set('parent', q.parent);
    const qs = p.toString();
    location.hash = '#/runs/' + enc(pid) + (qs ? '?' + qs : '');
  }

  async function trigger(ev) {
    ev.preventDefault();
    let input;
    try {
      input = tInput.value.trim() ? JSON.parse(tInput.value) : null;
    } catch (e) {
      tResult.textContent = 'The input is not valid JSON: ' + e.message;
      tInput.focus();
      return;
    }
    const body = { workflow: tWf.value, input };
    if (tKey.value.trim()) body.idempotencyKey = tKey.value.trim();
    try {
      const r = await call('POST', '/projects/' + enc(pid) + '/executions', body);
      fill(tResult, 'Started ', h('a', { href: '#/run/' + r.executionId }, r.executionId), ' (' + r.status + ').');
      refresh();
    } catch (e) {
      tResult.textContent = 'Could not start the run: ' + e.message;
    }
  }

  function page(step) {
    if (step > 0 && next) cursors.push(next);
    if (step < 0 && cursors.length > 1) cursors.pop();
    refresh().catch(() => {});
  }

  function makeRow(x) {
    return h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: '#/run/' + x.executionId, title: x.executionId }, shortId(x.executionId))),
      h('td.wf'), h('td.st'), h('td.created'), h('td.dur.num'), h('td.attempt.num'), h('td.error'));
  }

  function updateRow(row, x) {
    const c = (n) => row.querySelector('td.' + n);
    fill(c('wf'), x.workflow);
    fill(c('st'), badge(x.status), x.cancelRequested && !['cancelled', 'completed', 'failed'].includes(x.status) ? h('span.tag', {}, 'cancelling') : null);
    fill(c('created'), time(x.createdAt));
    const end = x.completedAt ? Date.parse(x.completedAt) : Date.now();
    fill(c('dur'), x.startedAt ? dur(end - Date.parse(x.startedAt)) : '–');
    fill(c('attempt'), x.attempt);
    fill(c('error'), x.error ? (x.error.message || JSON.stringify(x.error)) : '');
  }

  async function refresh() {
    const p = new URLSearchParams({ limit: '25' });
    if (q.status) p.set('status', q.status);
    if (q.workflow) p.set('workflow', q.workflow);
    if (q.parent) p.set('parent', q.parent);
    const cur = cursors[cursors.length - 1];
    if (cur) p.set('cursor', cur);
    let r;
    try {
      r = await call('GET', '/projects/' + enc(pid) + '/executions?' + p);
    } catch (e) {
      ctx.say('Could not read the runs: ' + e.message, 'error');
      throw e;
    }
    syncRows(tbody, r.executions || [], (x) => x.executionId, makeRow, updateRow);
    next = r.nextCursor;
    older.disabled = !next;
    newer.disabled = cursors.length <= 1;
    pageNote.textContent = 'Page ' + cursors.length + ': ' + r.count + (r.count === 1 ? ' run' : ' runs') + (r.count === 0 ? ' (none matches)' : '');
  }

  return watch('/projects/' + enc(pid) + '/events', refresh, (m) => {
    liveNote.textContent = m === 'stream' ? '● live (stream)' : '● live (polling every second)';
    liveNote.dataset.mode = m;
  });
}
