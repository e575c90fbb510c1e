// api.js: every call to the server's REST API goes through call() here.
//
// The API token (WF_API_TOKEN on the server) is kept in sessionStorage: it
// lives as long as the tab, is never a cookie (so no other site can make
// the browser send it) and is never put in a URL. call() sends it as
// "Authorization: Bearer <token>"; a 401 dispatches "wf-auth-needed" on
// window, and the page asks for the token (app.js).

const KEY = 'wf.token';

export function token() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

// The headers of every call, with extra ones.
export function headers(extra) {
  const h = Object.assign({}, extra);
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// An error reply: message is the server's "error" (or the status text).
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// call('GET', '/workers'), call('POST', path, {json}), call('PUT', path,
// file, 'application/octet-stream'): the reply's JSON (null when it has no
// body). Throws ApiError for a 4xx/5xx reply and for a network failure
// (status 0).
export async function call(method, path, body, type) {
  const init = { method, headers: headers({ Accept: 'application/json' }), cache: 'no-store' };
  if (body !== undefined) {
    if (type) {
      init.headers['Content-Type'] = type;
      init.body = body;
    } else {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'cannot reach the server');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (res.status === 401) window.dispatchEvent(new CustomEvent('wf-auth-needed'));
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.error) || res.status + ' ' + res.statusText);
  }
  return data;
}

export const enc = encodeURIComponent;
