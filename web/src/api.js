// The client of plcd's JSON endpoint: the gRPC services of proto/plc.proto as
// Connect-protocol unary calls, POST /planetlab.v1.<Service>/<Method> with the
// request message in proto3 JSON. int64 fields travel as strings both ways.

const kTokenKey = 'plng.portal.token';

// An error the server (or the network) returned. `code` is a Connect code name
// ("permission_denied", "unauthenticated", ...), `message` the server's own text,
// shown to the user as it is.
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// The session token lives in sessionStorage: it goes with the tab, and each
// tab (or browser profile) may be logged in as someone else.
export function getToken() {
  return sessionStorage.getItem(kTokenKey) || '';
}
export function setToken(token) {
  if (token) sessionStorage.setItem(kTokenKey, token);
  else sessionStorage.removeItem(kTokenKey);
}

let onUnauthenticated = () => {};
// Called when a call with a token comes back "unauthenticated" (the session
// expired or was revoked): the app then forgets the token and shows the login page.
export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

export async function call(service, method, request = {}, { anonymous = false } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  const token = anonymous ? '' : getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`/planetlab.v1.${service}/${method}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(request),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError('unavailable', `PLC could not be reached: ${e.message}`, 0);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = null;
  }
  if (!response.ok) {
    const code = (body && body.code) || `http_${response.status}`;
    const message = (body && body.message) || text || `HTTP ${response.status} ${response.statusText}`;
    if (code === 'unauthenticated' && token) onUnauthenticated();
    throw new ApiError(code, message, response.status);
  }
  if (body === null) throw new ApiError('internal', `PLC answered with something other than JSON: ${text.slice(0, 200)}`, response.status);
  return body;
}

// Per-service shorthands: auth('Login', {...}), admin('GetSites'), slice('GetSlices', {...}).
export const auth = (method, request, options) => call('Auth', method, request, options);
export const admin = (method, request, options) => call('Admin', method, request, options);
export const slice = (method, request, options) => call('Slice', method, request, options);
