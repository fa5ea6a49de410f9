// The API client against a stand-in fetch: what it sends, and that a refusal
// reaches the user as the server's own message.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

const store = new Map();
globalThis.sessionStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
};
let sent = [];
let reply = null;
globalThis.fetch = async (url, init) => {
  sent.push({ url, init });
  if (reply instanceof Error) throw reply;
  return new Response(reply.body, { status: reply.status, headers: { 'Content-Type': 'application/json' } });
};

const { ApiError, call, setToken, setUnauthenticatedHandler } = await import('../src/api.js');

beforeEach(() => {
  sent = [];
  store.clear();
  setUnauthenticatedHandler(() => {});
});

test('a call is a Connect unary POST with the request as JSON and the bearer token', async () => {
  setToken('t0k3n');
  reply = { status: 200, body: '{"slices":[]}' };
  const r = await call('Slice', 'GetSlices', { member: 'a@b.c' });
  assert.deepEqual(r, { slices: [] });
  assert.equal(sent[0].url, '/planetlab.v1.Slice/GetSlices');
  assert.equal(sent[0].init.method, 'POST');
  assert.equal(sent[0].init.headers['Content-Type'], 'application/json');
  assert.equal(sent[0].init.headers.Authorization, 'Bearer t0k3n');
  assert.deepEqual(JSON.parse(sent[0].init.body), { member: 'a@b.c' });
});

test('anonymous calls carry no token', async () => {
  setToken('t0k3n');
  reply = { status: 200, body: '{}' };
  await call('Admin', 'RegisterPerson', {}, { anonymous: true });
  assert.equal(sent[0].init.headers.Authorization, undefined);
});

test("a refusal is an ApiError with the server's code and message as they came", async () => {
  const message = 'expires_at 2027-03-18 13:56:00 UTC is too far ahead: the latest allowed is 2027-01-29 13:56:17 UTC (only admins may renew further)';
  reply = { status: 400, body: JSON.stringify({ code: 'invalid_argument', message }) };
  await assert.rejects(call('Slice', 'RenewSlice', {}), (e) => e instanceof ApiError && e.code === 'invalid_argument' && e.message === message && e.status === 400);
});

test('an expired session (unauthenticated with a token) is reported to the app once', async () => {
  setToken('old');
  let told = 0;
  setUnauthenticatedHandler(() => told++);
  reply = { status: 401, body: '{"code":"unauthenticated","message":"session expired"}' };
  await assert.rejects(call('Auth', 'WhoAmI', {}), /session expired/);
  assert.equal(told, 1);
  // A failed login (no token) is not a lost session.
  setToken('');
  await assert.rejects(call('Auth', 'Login', {}), /session expired/);
  assert.equal(told, 1);
});

test('an answer that is not JSON, and a network failure, are errors that say so', async () => {
  reply = { status: 502, body: 'Bad Gateway' };
  await assert.rejects(call('Auth', 'WhoAmI', {}), (e) => e.code === 'http_502' && e.message === 'Bad Gateway');
  reply = new TypeError('Failed to fetch');
  await assert.rejects(call('Auth', 'WhoAmI', {}), (e) => e.code === 'unavailable' && /could not be reached: Failed to fetch/.test(e.message));
});
