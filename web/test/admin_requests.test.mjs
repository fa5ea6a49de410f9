// The admin forms' request bodies: optional fields sent only when given, updates
// carrying only what changed, and a bad node key refused before any call.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { addNodeBody, addSiteBody, addTagTypeBody, updateSiteBody, updateTagTypeBody } from '../src/admin_requests.js';

function form(fields) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

test('AddSite: max slices and slivers only when given, as numbers', () => {
  assert.deepEqual(addSiteBody(form({ loginBase: ' mit ', name: 'MIT', url: '', maxSlices: '', maxSlivers: '' })),
    { loginBase: 'mit', name: 'MIT', url: '' });
  assert.deepEqual(addSiteBody(form({ loginBase: 'mit', name: 'MIT', url: 'https://mit.edu/', maxSlices: '3', maxSlivers: '0' })),
    { loginBase: 'mit', name: 'MIT', url: 'https://mit.edu/', maxSlices: 3, maxSlivers: 0 });
  assert.throws(() => addSiteBody(form({ loginBase: 'mit', name: 'MIT', maxSlices: '2.5' })), /Max slices must be a whole number/);
  assert.throws(() => addSiteBody(form({ loginBase: 'mit', name: 'MIT', maxSlivers: '-1' })), /Max slivers must be a whole number/);
});

const site = {
  loginBase: 'mit', name: 'MIT', url: 'https://mit.edu/', enabled: true, maxSlices: 10, maxSlivers: 1000,
  techContactName: '', techContactEmail: '', pending: false,
};
const asIs = { name: 'MIT', url: 'https://mit.edu/', maxSlices: '10', maxSlivers: '1000', enabled: 'on', techContactName: '', techContactEmail: '' };

test('UpdateSite carries only the fields the form changed', () => {
  assert.deepEqual(updateSiteBody(site, form({ ...asIs, name: 'MIT CSAIL', maxSlivers: '50' })),
    { loginBase: 'mit', name: 'MIT CSAIL', maxSlivers: 50 });
  // An unticked box is absent from FormData: the site is disabled.
  const { enabled, ...unticked } = asIs;
  assert.equal(enabled, 'on');
  assert.deepEqual(updateSiteBody(site, form(unticked)), { loginBase: 'mit', enabled: false });
  assert.deepEqual(updateSiteBody({ ...site, enabled: false }, form(asIs)), { loginBase: 'mit', enabled: true });
  assert.deepEqual(updateSiteBody(site, form({ ...asIs, techContactEmail: 'ops@mit.edu' })), { loginBase: 'mit', techContactEmail: 'ops@mit.edu' });
  assert.throws(() => updateSiteBody(site, form(asIs)), /Nothing to save: the form is as site mit already is/);
});

test('UpdateSite never sends "enabled" for a pending site (ApproveSite enables it)', () => {
  const pending = { ...site, enabled: false, pending: true };
  const { enabled, ...noBox } = asIs;
  assert.equal(enabled, 'on');
  assert.deepEqual(updateSiteBody(pending, form({ ...noBox, url: 'https://www.mit.edu/' })), { loginBase: 'mit', url: 'https://www.mit.edu/' });
  assert.throws(() => updateSiteBody(pending, form(noBox)), /Nothing to save/);
});

test('AddNode converts the hex key to base64, and refuses a short one before any call', () => {
  const hex = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
  assert.deepEqual(addNodeBody(form({ hostname: ' n1.mit.edu ', loginBase: 'mit', publicKey: hex, bootState: 'safeboot' })), {
    hostname: 'n1.mit.edu', loginBase: 'mit', publicKey: 'ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=', bootState: 'safeboot',
  });
  assert.throws(() => addNodeBody(form({ hostname: 'n1.mit.edu', loginBase: 'mit', publicKey: hex.slice(2), bootState: 'boot' })), /31 bytes/);
});

test('AddTagType keeps the description and default as typed', () => {
  assert.deepEqual(addTagTypeBody(form({ name: ' rack ', description: ' where the node is\n', category: 'node', minRole: 'tech', valueKind: 'string', defaultValue: '' })),
    { name: 'rack', description: ' where the node is\n', category: 'node', minRole: 'tech', valueKind: 'string', defaultValue: '' });
});

test('UpdateTagType carries only what changed; clearing the default is a change', () => {
  const type = { name: 'vref', description: 'image', minRole: 'user', defaultValue: 'debian12', category: 'slice/config', valueKind: 'string' };
  assert.deepEqual(updateTagTypeBody(type, form({ description: 'root image', minRole: 'user', defaultValue: 'debian12' })),
    { name: 'vref', description: 'root image' });
  assert.deepEqual(updateTagTypeBody(type, form({ description: 'image', minRole: 'pi', defaultValue: '' })),
    { name: 'vref', minRole: 'pi', defaultValue: '' });
  assert.throws(() => updateTagTypeBody(type, form({ description: 'image', minRole: 'user', defaultValue: 'debian12' })), /Nothing to save/);
});
