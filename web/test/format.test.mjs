// Times and lists as the portal shows and reads them.
import assert from 'node:assert/strict';
import { test } from 'node:test';

process.env.TZ = 'UTC';
const f = await import('../src/format.js');

test('times are unix seconds (JSON strings for int64) printed in UTC; 0 is "never"', () => {
  assert.equal(f.formatTime('1796478790'), '2026-12-05 13:53 UTC');
  assert.equal(f.formatTime(1796478790, '—', { withSeconds: true }), '2026-12-05 13:53:10 UTC');
  assert.equal(f.formatTime('0'), '—');
  assert.equal(f.formatTime(0, 'in use'), 'in use');
});

test('spans keep their two largest units', () => {
  assert.equal(f.formatSpan(3 * 86400 - 1), '2 days 23 hours');
  assert.equal(f.formatSpan(86400 + 60), '1 day 1 minute');
  assert.equal(f.formatSpan(59), '59 seconds');
  assert.equal(f.formatRelative(1000 + 7200, 1000), 'in 2 hours');
  assert.equal(f.formatRelative(1000 - 60, 1000), '1 minute ago');
  assert.equal(f.formatRelative(0, 1000), 'never');
});

test('datetime-local values round-trip to the minute', () => {
  assert.equal(f.toLocalInput('1796478790'), '2026-12-05T13:53');
  assert.equal(f.fromLocalInput('2026-12-05T13:53'), 1796478780);
  assert.equal(f.fromLocalInput(''), 0);
  assert.equal(f.fromLocalInput('not a date'), 0);
});

test('lists of emails or hostnames split on commas, semicolons and space', () => {
  assert.deepEqual(f.splitList(' a@x, b@y;c@z\n d@w '), ['a@x', 'b@y', 'c@z', 'd@w']);
  assert.deepEqual(f.splitList(' , '), []);
});
