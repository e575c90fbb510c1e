// live.js: keeping a page current. watch(streamPath, refresh) calls
// refresh() (which re-reads the REST endpoints) at once and then whenever
// something changes:
//
//   - "stream": the server's Server-Sent Events at streamPath
//     (/executions/{id}/events, /projects/{id}/events). Each event only
//     says that something changed: refresh() re-reads the REST state, so
//     the page never depends on an event's exact shape, and events that
//     come in a burst are coalesced into one refresh. Without a token an
//     EventSource reads the stream; with one, fetch() does (EventSource
//     cannot send an Authorization header) and the events are parsed here.
//     A refresh every STREAM_SAFETY_MS still runs, in case an event is lost.
//   - "polling": when the stream cannot be had (a server without it answers
//     404, a proxy cuts it), refresh() every POLL_MS, and the stream is
//     tried again every RETRY_MS.
//
// Only one refresh runs at a time. The returned function stops everything.

import { headers } from './api.js';

const POLL_MS = 1000;
const RETRY_MS = 15000;
const STREAM_SAFETY_MS = 10000;
const COALESCE_MS = 100; // events within this long make one refresh
const MIN_GAP_MS = 500; // and refreshes start at most this often on events

export function watch(streamPath, refresh, onMode) {
  let stopped = false;
  let mode = '';
  let timer = null; // the next refresh
  let retry = null; // the next attempt at the stream
  let running = false;
  let again = false;
  let soon = false; // a refresh for events is scheduled
  let lastStart = 0;
  let closeStream = () => {};

  const setMode = (m) => {
    if (m === mode) return;
    mode = m;
    if (onMode) onMode(m);
  };

  // Runs refresh(), then schedules the next one for this mode.
  const tick = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    soon = false;
    lastStart = Date.now();
    try {
      await refresh();
    } catch (e) {
      // The page shows its own errors; keep watching.
    }
    running = false;
    if (stopped) return;
    // Exactly one timer is pending from here on, so no second chain of
    // refreshes can start.
    clearTimeout(timer);
    if (again) {
      again = false;
      timer = setTimeout(tick, 0);
      return;
    }
    if (soon) {
      // events came while it ran: their refresh, after the usual gap
      timer = setTimeout(tick, Math.max(COALESCE_MS, lastStart + MIN_GAP_MS - Date.now()));
      return;
    }
    timer = setTimeout(tick, mode === 'stream' ? STREAM_SAFETY_MS : POLL_MS);
  };

  // A busy project sends many events a second: they are folded into at
  // most one refresh per MIN_GAP_MS.
  const onEvent = () => {
    if (soon) return;
    soon = true;
    clearTimeout(timer);
    timer = setTimeout(tick, Math.max(COALESCE_MS, lastStart + MIN_GAP_MS - Date.now()));
  };

  const fallBack = () => {
    closeStream();
    if (stopped) return;
    setMode('polling');
    onEvent();
    clearTimeout(retry);
    retry = setTimeout(openStream, RETRY_MS);
  };

  const opened = () => {
    setMode('stream');
    onEvent(); // what changed between our last read and the stream's start
  };

  const openStream = () => {
    if (stopped || !streamPath) return;
    if (headers().Authorization) streamWithFetch();
    else streamWithEventSource();
  };

  const streamWithEventSource = () => {
    const es = new EventSource(streamPath);
    closeStream = () => es.close();
    es.onopen = opened;
    es.onmessage = onEvent;
    // Named events ("run", "step", …) do not reach onmessage.
    for (const name of ['run', 'step', 'retry']) es.addEventListener(name, onEvent);
    es.onerror = () => {
      // A non-200 reply closes it for good; a dropped stream would be
      // retried by the browser, but we decide when to retry.
      fallBack();
    };
  };

  const streamWithFetch = async () => {
    const ctrl = new AbortController();
    closeStream = () => ctrl.abort();
    try {
      const res = await fetch(streamPath, {
        headers: headers({ Accept: 'text/event-stream' }),
        cache: 'no-store',
        signal: ctrl.signal,
      });
      const type = res.headers.get('Content-Type') || '';
      if (!res.ok || !type.startsWith('text/event-stream') || !res.body) {
        ctrl.abort();
        throw new Error('no stream');
      }
      opened();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        // An event ends with a blank line; one with a data field counts.
        const blocks = buf.split(/\r\n\r\n|\n\n|\r\r/);
        buf = blocks.pop();
        if (blocks.some((b) => /^data:/m.test(b))) onEvent();
      }
    } catch (e) {
      // aborted, refused, or cut: polling below
    }
    if (!stopped) fallBack();
  };

  setMode('polling');
  tick();
  openStream();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(retry);
    closeStream();
  };
}
