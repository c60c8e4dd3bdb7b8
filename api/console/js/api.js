// The API client: the v2 envelope, and the login session.
//
// Tokens live in this module's variables only, never in web storage (local or session) or cookies: nothing
// on disk or in storage for another script or a shared computer to pick up, and closing or reloading the tab ends
// the console's session (the user logs in again). The access token is renewed shortly before it expires with the refresh token,
// and again when a request is refused with 401 `token_expired`. The server spends each refresh token once and
// treats a second use as theft (revoking the whole session), so there is only ever one refresh in flight: every
// caller that needs one awaits the same promise.

const BASE = '/api/v1';
/** Renew this long before expiry (long-lived tokens); short ones are renewed at 80 % of their lifetime. */
const RENEW_BEFORE_MS = 60_000;

let tokens = null; // { access, refresh, expiresAt }
let refreshing = null;
let renewTimer = null;
let refreshes = 0;
let onEnded = () => {};

/** A refused request, with the envelope's `code`, `message` and `details`. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  get reason() {
    return this.details.reason;
  }
}

function networkError(cause) {
  const error = new Error(String(cause && cause.message ? cause.message : cause));
  error.name = 'NetworkError';
  return error;
}

/** Calls `listener(reason)` when the session ends by itself (refused refresh, revoked session). */
export function onSessionEnded(listener) {
  onEnded = listener;
}

export function isLoggedIn() {
  return tokens !== null;
}

/** How many times the access token was renewed in this tab. */
export function refreshCount() {
  return refreshes;
}

function adopt(pair) {
  const lifetime = Math.max(1, Number(pair.expires_in) || 3600) * 1000;
  tokens = { access: pair.access_token, refresh: pair.refresh_token, expiresAt: Date.now() + lifetime, lifetime };
  clearTimeout(renewTimer);
  const delay = lifetime > 2 * RENEW_BEFORE_MS ? lifetime - RENEW_BEFORE_MS : lifetime * 0.8;
  renewTimer = setTimeout(renewInBackground, Math.max(500, delay));
}

function renewInBackground() {
  refreshSession().catch((error) => {
    // Offline for a moment: try again soon, the refresh token is still ours.
    if (error.name === 'NetworkError' && tokens) renewTimer = setTimeout(renewInBackground, 5000);
  });
}

function end(reason) {
  const hadSession = tokens !== null;
  tokens = null;
  clearTimeout(renewTimer);
  if (hadSession) onEnded(reason);
}

/** Forgets the tokens without telling the server (the server side is `logout`). */
export function forget() {
  tokens = null;
  clearTimeout(renewTimer);
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function errorOf(response, body) {
  const error = body && body.error;
  if (error) return new ApiError(response.status, error.code, error.message, error.details);
  const code = response.status >= 500 ? 'INTERNAL_ERROR' : `HTTP_${response.status}`;
  return new ApiError(response.status, code, response.statusText, {});
}

/** Renews the token pair; concurrent callers share one request. Rejects (and ends the session) when refused. */
export function refreshSession() {
  if (!refreshing) {
    refreshing = (async () => {
      if (!tokens) throw new ApiError(401, 'UNAUTHORIZED', 'not logged in', { reason: 'missing_token' });
      let response;
      try {
        response = await fetch(`${BASE}/auth/refresh`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ refresh_token: tokens.refresh }),
          credentials: 'omit',
        });
      } catch (cause) {
        throw networkError(cause);
      }
      const body = await readJson(response);
      if (!response.ok || !body || !body.success) {
        const error = errorOf(response, body);
        if (response.status === 401) end(error.reason || 'token_expired');
        throw error;
      }
      adopt(body.data);
      refreshes += 1;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function send(path, init, access) {
  const headers = new Headers(init.headers || {});
  if (access) headers.set('Authorization', `Bearer ${access}`);
  if (!headers.has('Accept')) headers.set('Accept', 'application/json');
  try {
    return await fetch(BASE + path, { ...init, headers, credentials: 'omit' });
  } catch (cause) {
    if (cause && cause.name === 'AbortError') throw cause;
    throw networkError(cause);
  }
}

/** `fetch` of an API path with the access token, renewing it when needed; returns the raw response. */
export async function authFetch(path, init = {}) {
  if (refreshing) await refreshing.catch(() => {});
  // About to expire (the renewal timer may have been held up, e.g. by a sleeping laptop): renew first.
  if (tokens && tokens.expiresAt - Date.now() < Math.min(5000, tokens.lifetime * 0.1)) await refreshSession().catch(() => {});
  if (!tokens) throw new ApiError(401, 'UNAUTHORIZED', 'not logged in', { reason: 'token_expired' });
  const used = tokens.access;
  const response = await send(path, init, used);
  if (response.status !== 401) return response;
  const error = errorOf(response, await readJson(response.clone()));
  if (error.reason === 'session_revoked' || error.reason === 'refresh_token_reused') {
    end(error.reason);
    throw error;
  }
  // Renew unless someone else already did while this request was out; then try once more.
  if (tokens && tokens.access === used) await refreshSession();
  if (!tokens) throw error;
  return send(path, init, tokens.access);
}

async function envelope(response) {
  const body = await readJson(response);
  if (!response.ok || !body || body.success === false) throw errorOf(response, body);
  return body;
}

/** An authenticated JSON request; resolves to the envelope's `data`. */
export async function call(method, path, body) {
  const init = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  return (await envelope(await authFetch(path, init))).data;
}

async function publicPost(path, body) {
  return envelope(await send(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  }));
}

export async function login(email, password) {
  const { data } = await publicPost('/auth/login', { email, password });
  adopt(data);
}

export async function register(email, password, displayName) {
  const body = { email, password };
  if (displayName) body.display_name = displayName;
  const { data } = await publicPost('/auth/register', body);
  adopt(data);
  return data.user;
}

/** Ends the session on the server (its tokens stop working everywhere), then here. */
export async function logout() {
  try {
    if (tokens) await call('POST', '/auth/logout');
  } finally {
    forget();
  }
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body ?? {}),
  put: (path, body) => call('PUT', path, body),
  del: (path) => call('DELETE', path),
};
