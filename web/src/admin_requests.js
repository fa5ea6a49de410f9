// Request bodies of the admin pages' forms (Admin.AddSite, UpdateSite, AddNode,
// UpdateTagType, AddTagType), built from the submitted FormData `f` in one
// place, so that proto/plc.proto's layout is followed here and not in the pages.
// A field PLC treats as optional is sent only when given; an update carries
// only what differs from the object as GetX returned it.
import { nodeKeyToBase64 } from './node_key.js';

const text = (f, name) => (f.get(name) ?? '').toString().trim();

// An optional int32 count: undefined when the field is empty.
function count(f, name, label) {
  const t = text(f, name);
  if (t === '') return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${label} must be a whole number, 0 or more (not "${t}").`);
  return n;
}

// Admin.AddSite: without max slices or slivers PLC applies its defaults
// (default_max_slices, default_max_slivers); the site is enabled.
export function addSiteBody(f) {
  const body = { loginBase: text(f, 'loginBase'), name: text(f, 'name'), url: text(f, 'url') };
  const maxSlices = count(f, 'maxSlices', 'Max slices');
  const maxSlivers = count(f, 'maxSlivers', 'Max slivers');
  if (maxSlices !== undefined) body.maxSlices = maxSlices;
  if (maxSlivers !== undefined) body.maxSlivers = maxSlivers;
  return body;
}

// Admin.UpdateSite for `site` (GetSites' answer). A pending site's form has no
// "enabled" box: PLC refuses to enable a requested site other than by
// ApproveSite. Throws when nothing differs.
export function updateSiteBody(site, f) {
  const body = { loginBase: site.loginBase };
  for (const key of ['name', 'url', 'techContactName', 'techContactEmail']) {
    const value = text(f, key);
    if (value !== (site[key] || '')) body[key] = value;
  }
  for (const [key, label] of [['maxSlices', 'Max slices'], ['maxSlivers', 'Max slivers']]) {
    const value = count(f, key, label);
    if (value !== undefined && value !== Number(site[key] || 0)) body[key] = value;
  }
  if (!site.pending) {
    const enabled = f.get('enabled') !== null;
    if (enabled !== !!site.enabled) body.enabled = enabled;
  }
  if (Object.keys(body).length === 1) throw new Error(`Nothing to save: the form is as site ${site.loginBase} already is.`);
  return body;
}

// Admin.AddNode: the key pasted as hex or base64 (refused here unless it is 32
// bytes); PLC makes "boot" of an empty boot state.
export function addNodeBody(f) {
  return {
    hostname: text(f, 'hostname'),
    loginBase: text(f, 'loginBase'),
    publicKey: nodeKeyToBase64(f.get('publicKey')),
    bootState: text(f, 'bootState'),
  };
}

// Admin.AddTagType. Description and default keep their spaces and lines as typed.
export function addTagTypeBody(f) {
  return {
    name: text(f, 'name'),
    description: (f.get('description') ?? '').toString(),
    category: text(f, 'category'),
    minRole: text(f, 'minRole'),
    valueKind: text(f, 'valueKind'),
    defaultValue: (f.get('defaultValue') ?? '').toString(),
  };
}

// Admin.UpdateTagType for `type` (GetTagTypes' answer). Throws when nothing differs.
export function updateTagTypeBody(type, f) {
  const body = { name: type.name };
  const description = (f.get('description') ?? '').toString();
  const defaultValue = (f.get('defaultValue') ?? '').toString();
  const minRole = text(f, 'minRole');
  if (description !== (type.description || '')) body.description = description;
  if (minRole && minRole !== type.minRole) body.minRole = minRole;
  if (defaultValue !== (type.defaultValue || '')) body.defaultValue = defaultValue;
  if (Object.keys(body).length === 1) throw new Error(`Nothing to save: the form is as tag type ${type.name} already is.`);
  return body;
}
