// A node's public key as an operator pastes it, and as AddNode takes it (base64
// of 32 bytes): what is accepted, and what is refused before anything is sent.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';

import { kNodeKeyBytes, nodeKeyHex, nodeKeyToBase64 } from '../src/node_key.js';

function rawKey() {
  const { publicKey } = generateKeyPairSync('ed25519');
  return publicKey.export({ format: 'der', type: 'spki' }).subarray(-kNodeKeyBytes);
}

test('64 hex digits (as plcctl node keygen prints them) become the base64 of the 32 bytes', () => {
  const raw = rawKey();
  assert.equal(nodeKeyToBase64(raw.toString('hex')), raw.toString('base64'));
  assert.equal(nodeKeyToBase64(raw.toString('hex').toUpperCase()), raw.toString('base64'));
  // Pasted across lines, with spaces around.
  const hex = raw.toString('hex');
  assert.equal(nodeKeyToBase64(`  ${hex.slice(0, 32)}\n${hex.slice(32)}  `), raw.toString('base64'));
});

test('base64, padded or not, standard or URL-safe, is accepted as it is', () => {
  const raw = rawKey();
  const b64 = raw.toString('base64');
  assert.equal(nodeKeyToBase64(b64), b64);
  assert.equal(nodeKeyToBase64(b64.replace(/=+$/, '')), b64);
  assert.equal(nodeKeyToBase64(raw.toString('base64url')), b64);
  // A fixed key: the encodings of one 32-byte value.
  const fixed = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
  assert.equal(nodeKeyToBase64('ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8='), fixed.toString('base64'));
  assert.equal(nodeKeyToBase64(fixed.toString('hex')), 'ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=');
});

test('a key of another length is refused, saying how long it is and what is needed', () => {
  const raw = rawKey();
  assert.throws(() => nodeKeyToBase64(raw.toString('hex').slice(0, 62)), /31 bytes \(62 hex digits\).*32 bytes: 64 hex digits/);
  assert.throws(() => nodeKeyToBase64(`${raw.toString('hex')}00`), /33 bytes \(66 hex digits\)/);
  assert.throws(() => nodeKeyToBase64(raw.subarray(0, 16).toString('base64')), /16 bytes \(24 base64 characters\)/);
  assert.throws(() => nodeKeyToBase64(Buffer.concat([raw, raw]).toString('base64')), /64 bytes/);
});

test('garbage, an empty field and an SSH key are refused with a reason', () => {
  assert.throws(() => nodeKeyToBase64(''), /No public key given/);
  assert.throws(() => nodeKeyToBase64('   \n'), /No public key given/);
  assert.throws(() => nodeKeyToBase64(undefined), /No public key given/);
  assert.throws(() => nodeKeyToBase64('not a key at all!'), /neither hex nor base64/);
  // 64 characters that are not all hex digits are read as base64: 48 bytes.
  assert.throws(() => nodeKeyToBase64('g'.repeat(64)), /48 bytes \(64 base64 characters\)/);
  // Padding in the middle, or padding that does not complete a group of four.
  assert.throws(() => nodeKeyToBase64('AAAA=AAA'), /neither hex nor base64/);
  assert.throws(() => nodeKeyToBase64('AAAAA=='), /neither hex nor base64/);
  assert.throws(() => nodeKeyToBase64('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPh0 me@host'), /an SSH key, not a node key/);
});

test("GetNodes' base64 key is shown as 64 hex digits", () => {
  const raw = rawKey();
  assert.equal(nodeKeyHex(raw.toString('base64')), raw.toString('hex'));
  assert.equal(nodeKeyHex(''), '');
  assert.equal(nodeKeyHex(undefined), '');
});
