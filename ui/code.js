// code.js: a project's deployed code (GET /projects/{id}/workflows and
// /activities): name, version, SHA-256, size, whether it is active, and
// whether the project's worker has that version loaded (GET
// /workers/status/{id}, loaded.workflowCode). Upload of a compiled plugin
// (.so) under a workflow or activity name: PUT /projects/{id}/workflows/
// {name} (or activities/) with the file as the body; the worker loads it
// at its next restart, which a button here asks for.

import { call, enc } from './api.js';
import { h, fill, syncRows, shortId, bytes } from './dom.js';
import { watch } from './live.js';

export function render(main, ctx) {
  const pid = ctx.arg;
  if (!pid) {
    main.append(h('h1', {}, 'Code'), h('p', {}, 'No project yet: create one on the ', h('a', { href: '#/workers' }, 'workers page'), '.'));
    return null;
  }
  const wfBody = h('tbody');
  const actBody = h('tbody');
  const kind = h('select#u-kind', { name: 'kind' }, h('option', { value: 'workflows' }, 'workflow'), h('option', { value: 'activities' }, 'activity'));
  const name = h('input#u-name', { name: 'name', required: true, placeholder: 'e.g. order-flow', spellcheck: 'false' });
  const file = h('input#u-file', { name: 'file', type: 'file', accept: '.so,application/octet-stream', required: true });
  const result = h('div.upload-result', { role: 'status' });
  const restart = h('button', { type: 'button', hidden: true, onclick: restartWorker }, 'Restart the worker to load it');

  const table = (caption, body) =>
    h('table.grid', {}, h('caption', {}, caption),
      h('thead', {}, h('tr', {}, ['Name', 'Version', 'SHA-256', 'Size', 'Active', 'Loaded by the worker'].map((t) => h('th', { scope: 'col' }, t)))),
      body);

  main.append(
    h('h1', {}, 'Code of ', h('code', {}, pid)),
    table('Workflows', wfBody),
    table('Activities', actBody),
    h('section.panel', {},
      h('h2', {}, 'Deploy a plugin'),
      h('p.hint', {}, 'A compiled plugin (.so) built against include/wf/plugin.h; the name must be one the plugin declares.'),
      h('form.stack', { onsubmit: upload },
        h('label', { for: 'u-kind' }, 'Deploy as'), kind,
        h('label', { for: 'u-name' }, 'Name'), name,
        h('label', { for: 'u-file' }, 'Plugin file'), file,
        h('div.row', {}, h('button', { type: 'submit' }, 'Upload'), restart)),
      result),
  );

  async function upload(ev) {
    ev.preventDefault();
    const f = file.files[0];
    if (!f) return;
    fill(result, 'Uploading ' + f.name + ' (' + bytes(f.size) + ')…');
    try {
      const r = await call('PUT', '/projects/' + enc(pid) + '/' + kind.value + '/' + enc(name.value.trim()), f, 'application/octet-stream');
      const item = r.workflow || r.activity || {};
      const d = r.declares || {};
      fill(result,
        h('p.ok', {}, 'Deployed ' + item.name + ' version ' + item.version + (r.message ? ': ' + r.message : '.')),
        h('p.hint', {}, 'The plugin ' + ((d.plugin && d.plugin.name) || '?') + ' declares workflows: ' + ((d.workflows || []).join(', ') || 'none') + '; activities: ' + ((d.activities || []).join(', ') || 'none') + '.'));
      restart.hidden = false;
      refresh().catch(() => {});
    } catch (e) {
      fill(result, h('p.err', {}, 'Upload refused: ' + e.message));
    }
  }

  async function restartWorker() {
    restart.disabled = true;
    try {
      const r = await call('POST', '/workers/restart', { projectId: pid });
      ctx.say(r.message || 'Restarted.', 'ok');
      restart.hidden = true;
    } catch (e) {
      ctx.say('Could not restart the worker: ' + e.message, 'error');
    }
    restart.disabled = false;
    refresh().catch(() => {});
  }

  const makeRow = () => h('tr', {}, h('th', { scope: 'row' }), h('td.num'), h('td'), h('td.num'), h('td'), h('td'));

  function rowUpdater(loaded) {
    return (row, x) => {
      const c = row.children;
      fill(c[0], x.name);
      fill(c[1], x.version);
      fill(c[2], x.sha256 ? h('code', { title: x.sha256 }, shortId(x.sha256, 12)) : '–');
      fill(c[3], bytes(x.size));
      fill(c[4], x.active ? 'yes' : 'no (deleted)');
      fill(c[5], loaded(x));
      row.classList.toggle('inactive', !x.active);
    };
  }

  async function refresh() {
    const base = '/projects/' + enc(pid);
    const [w, a, s] = await Promise.all([
      call('GET', base + '/workflows'),
      call('GET', base + '/activities'),
      call('GET', '/workers/status/' + enc(pid)).catch(() => null),
    ]);
    const l = (s && s.loaded) || null;
    const code = (l && l.workflowCode) || {};
    const plugins = new Set(((l && l.plugins) || []).map((p) => p.sha256));
    syncRows(wfBody, w.workflows || [], (x) => x.name, makeRow, rowUpdater((x) =>
      !l ? 'no worker' : code[x.name] === undefined ? 'no' : code[x.name] === x.sha256 ? 'yes' : 'older version (' + shortId(code[x.name], 12) + ')'));
    syncRows(actBody, a.activities || [], (x) => x.name, makeRow, rowUpdater((x) =>
      !l ? 'no worker' : (l.activities || []).includes(x.name) ? (plugins.has(x.sha256) ? 'yes' : 'older version') : 'no'));
  }

  return watch(null, () => refresh().catch((e) => ctx.say('Could not read the code: ' + e.message, 'error')));
}
