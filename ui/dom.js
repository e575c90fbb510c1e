// dom.js: building elements and formatting values, shared by every page.
// No innerHTML anywhere: text from the server goes in as text nodes, so a
// run's output can never become markup.

// h('tag.class#id', {attr: value, onclick: fn}, ...children): a new element.
// Children are nodes, strings (text), arrays, or null/false (skipped).
export function h(spec, attrs, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/.exec(spec);
  const el = document.createElement(m ? m[1] : spec);
  if (m) {
    for (const part of m[2].match(/[.#][\w-]+/g) || []) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// Replaces el's children with the given ones.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Keeps one row per key in tbody, in the order of items: make(item) builds
// a row once, update(row, item) refreshes it in place (so focus, open
// details and buttons survive a refresh). Rows of vanished keys go.
export function syncRows(tbody, items, key, make, update) {
  const old = new Map([...tbody.children].map((r) => [r.dataset.key, r]));
  let prev = null;
  for (const item of items) {
    const k = String(key(item));
    let row = old.get(k);
    if (row) old.delete(k);
    else {
      row = make(item);
      row.dataset.key = k;
    }
    update(row, item);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== row) tbody.insertBefore(row, want);
    prev = row;
  }
  for (const row of old.values()) row.remove();
}

// A status word as a badge (its colour comes from the class).
export function badge(status) {
  return h('span.badge.s-' + String(status || 'unknown').replace(/[^a-z]/g, ''), {}, status || '–');
}

export function json(v) {
  return v === undefined ? '' : JSON.stringify(v, null, 2);
}

export function shortId(s, n = 8) {
  return s ? String(s).slice(0, n) : '–';
}

export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

// A duration in milliseconds as "850 ms", "12.3 s", "4 min 5 s", "2 h 3 min".
export function dur(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '–';
  if (ms < 0) ms = 0;
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  const s = Math.round(ms / 1000);
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}

// The query part of a hash route as an object ("#/runs/p1?status=failed").
export function parseQuery(q) {
  return Object.fromEntries(new URLSearchParams(q || ''));
}
