// workers.js: the workers page. One row per project (GET /projects) with
// its worker on this server (GET /workers/status/{id}): status, pid,
// heartbeat age, restarts, the code versions it holds and the runs on
// each; start, stop and restart (POST /workers/start|stop|restart). Polled
// every second (workers have no event stream). A new project can be made
// here too (POST /projects).

import { call, enc } from './api.js';
import { h, fill, syncRows, badge, shortId, dur } from './dom.js';
import { watch } from './live.js';

export function render(main, ctx) {
  const tbody = h('tbody');
  const note = h('p.hint');
  const idInput = h('input#new-project-id', { name: 'id', pattern: '[A-Za-z0-9_\\-]{1,64}', placeholder: 'e.g. orders', required: true });
  const nameInput = h('input#new-project-name', { name: 'name', placeholder: 'optional' });

  main.append(
    h('h1', {}, 'Workers'),
    h('table.grid', { 'aria-describedby': 'workers-note' },
      h('thead', {}, h('tr', {},
        ['Project', 'Status', 'PID', 'Heartbeat', 'Restarts', 'Code versions (runs)', 'Loaded workflows', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody),
    h('p.hint#workers-note', {}, 'Heartbeat: time since the worker last reported. A version marked “current” is the code new runs start on; older ones stay loaded while runs pinned to them go on.'),
    note,
    h('details.panel', {},
      h('summary', {}, 'New project'),
      h('form.inline', { onsubmit: create },
        h('label', { for: 'new-project-id' }, 'Id'), idInput,
        h('label', { for: 'new-project-name' }, 'Name'), nameInput,
        h('button', { type: 'submit' }, 'Create'))),
  );

  async function create(ev) {
    ev.preventDefault();
    try {
      const body = { id: idInput.value.trim() };
      if (nameInput.value.trim()) body.name = nameInput.value.trim();
      const r = await call('POST', '/projects', body);
      ctx.say('Created project ' + r.project.id + '.', 'ok');
      idInput.value = nameInput.value = '';
      await ctx.reloadProjects();
      refresh();
    } catch (e) {
      ctx.say('Could not create the project: ' + e.message, 'error');
    }
  }

  async function act(what, id, btn) {
    const row = btn.closest('tr');
    for (const b of row.querySelectorAll('button')) b.disabled = true;
    ctx.say((what === 'start' ? 'Starting' : what === 'stop' ? 'Stopping' : 'Restarting') + ' the worker of ' + id + '…');
    try {
      const r = await call('POST', '/workers/' + what, { projectId: id });
      ctx.say(r.message || 'Done.', 'ok');
    } catch (e) {
      ctx.say('Could not ' + what + ' the worker of ' + id + ': ' + e.message, 'error');
    }
    for (const b of row.querySelectorAll('button')) b.disabled = false;
    refresh();
  }

  function makeRow(p) {
    const id = p.id;
    const btn = (what, label) => h('button', { type: 'button', class: 'small', 'data-action': what, 'aria-label': label + ' the worker of ' + id, onclick: (ev) => act(what, id, ev.currentTarget) }, label);
    return h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: '#/runs/' + enc(id) }, id)),
      h('td.status'), h('td.pid.num'), h('td.hb.num'), h('td.restarts.num'), h('td.versions'), h('td.loaded'),
      h('td.actions', {}, btn('start', 'Start'), btn('stop', 'Stop'), btn('restart', 'Restart')));
  }

  function updateRow(row, p) {
    const s = p.status || {};
    const cell = (c) => row.querySelector('td.' + c);
    fill(cell('status'), badge(s.status || (p.error ? 'unknown' : '…')), s.error ? h('div.err', {}, s.error) : null);
    fill(cell('pid'), s.pid ?? '–');
    fill(cell('hb'), s.lastHeartbeat ? dur(Date.now() - Date.parse(s.lastHeartbeat)) + ' ago' : '–');
    fill(cell('restarts'), s.restarts ?? '–');
    fill(cell('versions'), (s.versions || []).length
      ? h('ul.plain', {}, s.versions.map((v) => h('li', {}, h('code', { title: v.sha256 }, shortId(v.sha256, 12)), v.current ? h('span.tag', {}, 'current') : null, ' ', v.runs + (v.runs === 1 ? ' run' : ' runs'))))
      : '–');
    const wf = s.loaded && s.loaded.workflows;
    fill(cell('loaded'), wf && wf.length ? wf.join(', ') : '–');
    const running = s.isRunning;
    row.querySelector('[data-action=start]').hidden = !!running;
    row.querySelector('[data-action=stop]').hidden = !running;
    row.querySelector('[data-action=restart]').hidden = !running;
  }

  async function refresh() {
    const [projects, workers] = await Promise.all([call('GET', '/projects'), call('GET', '/workers')]);
    const list = projects.projects || [];
    const statuses = await Promise.all(list.map((p) => call('GET', '/workers/status/' + enc(p.id)).catch((e) => ({ error: e.message }))));
    const items = list.map((p, i) => ({ id: p.id, status: statuses[i].error ? null : statuses[i], error: statuses[i].error }));
    syncRows(tbody, items, (p) => p.id, makeRow, updateRow);
    note.textContent = list.length
      ? (workers.count || 0) + ' of ' + list.length + (list.length === 1 ? ' project has' : ' projects have') + ' a worker on this server.'
      : 'No project yet: create one below.';
  }

  return watch(null, () => refresh().catch((e) => ctx.say('Could not read the workers: ' + e.message, 'error')));
}
