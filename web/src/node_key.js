// A node's Ed25519 public key as the JSON API carries it. AddNode and
// UpdateNode take the raw 32 bytes (`bytes`, hence base64 in proto3 JSON);
// operators have it as `plcctl node keygen` prints it (public_key_hex: 64 hex
// digits) or as base64 (GetNodes' own form). Only the length is checked here,
// before anything is sent; PLC itself refuses bytes that are no Ed25519 point.

export const kNodeKeyBytes = 32;

const kWhatItTakes = `a node's Ed25519 public key is ${kNodeKeyBytes} bytes: 64 hex digits ` +
  '(public_key_hex of plcctl node keygen) or 44 base64 characters';

function bytesToBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

function hexToBytes(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

// Standard or URL-safe base64, padded or not; null when `text` is not base64.
function base64ToBytes(text) {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return null;
  const body = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  // A lone character past a group of four encodes no whole byte; padding, when
  // given, must complete the last group.
  if (body.length % 4 === 1) return null;
  if (text.length !== body.length && text.length % 4 !== 0) return null;
  let binary;
  try {
    binary = atob(body + '='.repeat((4 - (body.length % 4)) % 4));
  } catch {
    return null;
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

// The key as pasted (hex or base64; spaces and line breaks ignored) -> the
// base64 of its 32 bytes, for AddNode's and UpdateNode's `publicKey`. Throws an
// Error saying what is wrong with anything else.
export function nodeKeyToBase64(text) {
  const compact = String(text ?? '').replace(/\s+/g, '');
  if (!compact) throw new Error(`No public key given: ${kWhatItTakes}.`);
  if (/^(ssh-|ecdsa-)/.test(compact)) {
    throw new Error(`That is an SSH key, not a node key: ${kWhatItTakes}.`);
  }
  // Hex first: an even run of hex digits is read as hex (32 bytes in base64 is
  // 43 or 44 characters, never 64, so a node key is never mistaken).
  if (/^[0-9a-fA-F]+$/.test(compact) && compact.length % 2 === 0) {
    const bytes = hexToBytes(compact);
    if (bytes.length !== kNodeKeyBytes) {
      throw new Error(`The public key is ${bytes.length} bytes (${compact.length} hex digits); ${kWhatItTakes}.`);
    }
    return bytesToBase64(bytes);
  }
  const bytes = base64ToBytes(compact);
  if (!bytes) throw new Error(`The public key is neither hex nor base64; ${kWhatItTakes}.`);
  if (bytes.length !== kNodeKeyBytes) {
    throw new Error(`The public key is ${bytes.length} bytes (${compact.length} base64 characters); ${kWhatItTakes}.`);
  }
  return bytesToBase64(bytes);
}

// GetNodes' base64 `publicKey` as 64 hex digits, as plcctl shows it ('' for none).
export function nodeKeyHex(base64) {
  const bytes = base64ToBytes(String(base64 || ''));
  if (!bytes) return '';
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
