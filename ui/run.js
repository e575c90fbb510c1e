// run.js: one run (GET /executions/{id}): what it is, its input, output
// and error, and its steps as a timeline: each step a bar on one time axis
// from the run's start to its end (or now), placed from the step's
// startedAt to its completedAt. Sleeps and signal waits are drawn apart
// from activity calls, a step that took more than one attempt says so on
// its bar, and a click on a step opens its output (the row is a
// <details>). A child run links to its parent, and a join of child runs
// (a step of kind children: a fork, a bounded for) to its children.
// Buttons: cancel, retry, and send a signal with a JSON payload. Kept
// current by live.js (/executions/{id}/events).

import { call, enc } from './api.js';
import { h, fill, badge, json, time, dur, shortId } from './dom.js';
import { watch } from './live.js';

const ENDED = ['completed', 'failed', 'cancelled'];

export function render(main, ctx) {
  const id = ctx.arg;
  const head = h('div.runhead');
  const facts = h('dl.facts');
  const timeline = h('div.timeline');
  const axis = h('div.axis', { 'aria-hidden': 'true' });
  const io = h('div.io');
  const liveNote = h('span.live', {}, 'connecting…');
  const open = new Set(); // seq of the steps whose details are open
  const cancelBtn = h('button', { type: 'button', onclick: () => act('cancel') }, 'Cancel run');
  const retryBtn = h('button', { type: 'button', onclick: () => act('retry') }, 'Retry run');
  const sigName = h('input#sig-name', { name: 'signal', required: true, pattern: '[A-Za-z0-9_.:\\-]{1,128}', placeholder: 'e.g. approval' });
  const sigPayload = h('textarea#sig-payload', { name: 'payload', rows: 3, spellcheck: 'false' }, '{}');
  const sigBtn = h('button', { type: 'submit' }, 'Send signal');
  let nameTouched = false;
  let last = '';
  sigName.addEventListener('input', () => (nameTouched = true));

  main.append(
    h('p.crumbs', {}, h('a#back', { href: '#/runs' }, '← Runs')),
    head,
    h('div.actions', {}, cancelBtn, retryBtn, liveNote),
    h('form.inline.signal', { onsubmit: signal, 'aria-label': 'Send a signal' },
      h('label', { for: 'sig-name' }, 'Signal'), sigName,
      h('label', { for: 'sig-payload' }, 'Payload (JSON)'), sigPayload, sigBtn),
    facts,
    h('h2', {}, 'Steps'),
    axis,
    timeline,
    io,
  );

  async function act(what) {
    try {
      const r = await call('POST', '/executions/' + enc(id) + '/' + what);
      ctx.say((what === 'cancel' ? 'Cancel: ' : 'Retry: ') + 'the run is ' + r.status + '.', 'ok');
    } catch (e) {
      ctx.say('Could not ' + what + ' the run: ' + e.message, 'error');
    }
    refresh().catch(() => {});
  }

  async function signal(ev) {
    ev.preventDefault();
    let payload;
    try {
      payload = sigPayload.value.trim() ? JSON.parse(sigPayload.value) : null;
    } catch (e) {
      ctx.say('The payload is not valid JSON: ' + e.message, 'error');
      sigPayload.focus();
      return;
    }
    try {
      await call('POST', '/executions/' + enc(id) + '/signals/' + enc(sigName.value.trim()), payload);
      ctx.say('Signal “' + sigName.value.trim() + '” sent.', 'ok');
    } catch (e) {
      ctx.say('Could not send the signal: ' + e.message, 'error');
    }
    refresh().catch(() => {});
  }

  function fact(k, v) {
    return [h('dt', {}, k), h('dd', {}, v)];
  }

  function drawHead(x) {
    fill(head, h('h1', {}, x.workflow, ' ', badge(x.status)), h('p.hint', {}, 'Run ', h('code', {}, x.executionId)));
    main.querySelector('#back').href = '#/runs/' + enc(x.projectId);
    const end = x.completedAt ? Date.parse(x.completedAt) : Date.now();
    fill(facts,
      fact('Project', h('a', { href: '#/runs/' + enc(x.projectId) }, x.projectId)),
      x.parentId ? fact('Parent run', h('a#parent', { href: '#/run/' + x.parentId, title: x.parentId }, shortId(x.parentId))) : null,
      fact('Code', x.codeSha256 ? h('code', { title: x.codeSha256 }, shortId(x.codeSha256, 12)) : '–'),
      fact('Created', time(x.createdAt)),
      fact('Started', time(x.startedAt)),
      fact('Ended', time(x.completedAt)),
      fact('Duration', x.startedAt ? dur(end - Date.parse(x.startedAt)) : '–'),
      fact('Attempt', x.attempt),
      fact('Next due', x.runAt && !ENDED.includes(x.status) ? time(x.runAt) : '–'),
      x.idempotencyKey ? fact('Idempotency key', x.idempotencyKey) : null,
      x.cancelRequested ? fact('Cancel', 'requested') : null);
    cancelBtn.disabled = ENDED.includes(x.status);
    retryBtn.disabled = x.status !== 'failed';
    const ended = ENDED.includes(x.status);
    sigName.disabled = sigPayload.disabled = sigBtn.disabled = ended;
    // Offer the signal the run waits for.
    const waiting = (x.steps || []).find((s) => s.kind === 'signal' && s.status === 'waiting');
    if (waiting && !nameTouched && !sigName.value) sigName.value = waiting.name;
  }

  function drawIO(x) {
    fill(io,
      h('section', {}, h('h2', {}, 'Input'), h('pre.json#run-input', {}, json(x.input))),
      h('section', {}, h('h2', {}, 'Output'), h('pre.json#run-output', {}, x.output === null ? '–' : json(x.output))),
      h('section', {}, h('h2', {}, 'Error'), h('pre.json.err#run-error', {}, x.error === null ? '–' : json(x.error))));
  }

  // A join's children: once it is done its output lists them (for an any
  // join, the winner); the run list filtered by parent has them all.
  function children(x, s) {
    const done = Array.isArray(s.output) ? s.output : [];
    return h('div.children', {},
      done.length ? h('ul.kids', {}, done.map((c) => h('li', {},
        h('a', { href: '#/run/' + c.executionId, title: c.executionId }, shortId(c.executionId)), ' ',
        '#' + c.index, ' ', badge(c.status)))) : null,
      h('p', {}, h('a.kids-all', { href: '#/runs/' + enc(x.projectId) + '?parent=' + enc(x.executionId) }, 'All child runs of this run →')));
  }

  // The axis: t0 the run's start, t1 its end or now.
  function drawTimeline(x) {
    const steps = x.steps || [];
    const t0 = Date.parse(x.startedAt || x.createdAt);
    let t1 = x.completedAt ? Date.parse(x.completedAt) : Date.now();
    for (const s of steps) if (s.completedAt) t1 = Math.max(t1, Date.parse(s.completedAt));
    // A sleeping run is drawn up to its wake time.
    if (x.status === 'sleeping' && x.runAt) t1 = Math.max(t1, Date.parse(x.runAt));
    const span = Math.max(t1 - t0, 1);
    const pct = (t) => Math.min(100, Math.max(0, ((t - t0) / span) * 100));
    fill(axis, [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tick = h('span', {}, '+' + dur(span * f));
      tick.style.left = f * 100 + '%';
      return tick;
    }));
    if (!steps.length) {
      fill(timeline, h('p.hint', {}, ENDED.includes(x.status) ? 'This run took no steps.' : 'No step yet.'));
      return;
    }
    fill(timeline, steps.map((s, i) => {
      const start = s.startedAt ? Date.parse(s.startedAt) : s.completedAt ? Date.parse(s.completedAt) : t0;
      let end = s.completedAt ? Date.parse(s.completedAt) : Date.now();
      if (s.kind === 'sleep') {
        // A sleep's step is written when it starts; it lasts until the
        // next step starts, or the run wakes or ends.
        const next = steps[i + 1];
        if (next) end = Date.parse(next.startedAt || next.completedAt || s.completedAt);
        else if (x.status === 'sleeping' && x.runAt) end = Date.parse(x.runAt);
        else end = x.completedAt ? Date.parse(x.completedAt) : Date.now();
      }
      const bar = h('span.bar.k-' + s.kind + '.s-' + s.status, { 'aria-hidden': 'true' }, s.attempts > 1 ? '×' + s.attempts : '');
      bar.style.left = pct(start) + '%';
      bar.style.width = Math.max(pct(end) - pct(start), 0.6) + '%';
      const name = s.name === s.kind ? '' : s.name;
      const label = '#' + s.seq + ' ' + s.kind + ' ' + name;
      const d = h('details.step', { 'data-seq': s.seq, open: open.has(s.seq) },
        h('summary', { 'aria-label': label + ', ' + s.status + ', ' + dur(end - start) + (s.attempts > 1 ? ', ' + s.attempts + ' attempts' : '') },
          h('span.label', {}, h('span.kind', {}, s.kind), ' ', name, s.attempts > 1 ? h('span.tag.retries', {}, s.attempts + ' attempts') : null),
          h('span.track', {}, bar),
          h('span.took', {}, s.kind === 'sleep' && end > Date.now() ? 'sleeping' : s.completedAt ? dur(end - start) : s.status)),
        h('div.stepbody', {},
          h('dl.facts', {},
            fact('Step', '#' + s.seq + ' (' + s.kind + ')'), fact('Status', badge(s.status)),
            fact('Attempts', s.attempts), fact('Started', time(s.startedAt)), fact('Ended', time(s.completedAt))),
          s.error ? h('pre.json.err', {}, s.error) : null,
          s.kind === 'children' ? children(x, s) : null,
          h('pre.json.step-output', {}, s.output === null ? '(no output)' : json(s.output))));
      d.addEventListener('toggle', () => (d.open ? open.add(s.seq) : open.delete(s.seq)));
      return d;
    }));
  }

  async function refresh() {
    let r;
    try {
      r = await call('GET', '/executions/' + enc(id));
    } catch (e) {
      ctx.say('Could not read the run: ' + e.message, 'error');
      throw e;
    }
    const x = r.execution;
    // A run in progress moves on the axis each second; an ended one is
    // drawn again only when it changed (so an open step stays put).
    const key = JSON.stringify(x);
    if (key === last && ENDED.includes(x.status)) return;
    last = key;
    const active = document.activeElement;
    const seq = active && active.closest && active.closest('details.step') ? active.closest('details.step').dataset.seq : null;
    drawHead(x);
    drawTimeline(x);
    drawIO(x);
    if (seq !== null) {
      const again = timeline.querySelector('details.step[data-seq="' + seq + '"] summary');
      if (again) again.focus();
    }
  }

  return watch('/executions/' + enc(id) + '/events', refresh, (m) => {
    liveNote.textContent = m === 'stream' ? '● live (stream)' : '● live (polling every second)';
    liveNote.dataset.mode = m;
  });
}
