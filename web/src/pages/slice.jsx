// One slice: its details, expiry and renewal, members, nodes (with each
// sliver's state), tags, ticket, deletion.
import { useMemo, useState } from 'preact/hooks';
import { admin, slice } from '../api.js';
import {
  Checkbox, ConfirmButton, ErrorMessage, Field, Loading, Outcome, Submit, Table, submitWith, useAction, useLoad,
} from '../components.jsx';
import { formatRelative, formatTime, fromLocalInput, kDay, nowSeconds, seconds, splitList, toLocalInput } from '../format.js';
import { navigate } from '../session.js';
import { Expiry, sliceState } from './slices.jsx';

export function SlicePage({ name }) {
  const load = useLoad(async () => {
    const r = await slice('GetSlices', { names: [name] });
    const s = (r.slices || [])[0];
    if (!s) throw new Error(`No slice named ${name}.`);
    return s;
  }, [name]);
  return (
    <section>
      <h1 tabindex="-1">Slice {name}</h1>
      <Loading load={load}>
        {(s) => (
          <>
            <Summary s={s} />
            <Details s={s} reload={load.reload} />
            <Renew s={s} reload={load.reload} />
            <Members s={s} reload={load.reload} />
            <Nodes s={s} reload={load.reload} />
            <Tags s={s} />
            <Ticket s={s} />
            <DeleteSlice s={s} />
          </>
        )}
      </Loading>
    </section>
  );
}

function Summary({ s }) {
  return (
    <dl class="facts">
      <dt>Site</dt>
      <dd>{s.loginBase}</dd>
      <dt>State</dt>
      <dd>{sliceState(s)}</dd>
      <dt>Expires</dt>
      <dd>
        <Expiry s={s} />
      </dd>
      <dt>Instantiation</dt>
      <dd>{s.instantiation}</dd>
      <dt>Nodes</dt>
      <dd>
        {(s.nodes || []).length} of at most {s.maxNodes}
      </dd>
      <dt>Created</dt>
      <dd>
        {formatTime(s.createdAt)}
        {s.creator ? ` by ${s.creator}` : ''}
      </dd>
      <dt>xid</dt>
      <dd>{s.xid}</dd>
    </dl>
  );
}

function Details({ s, reload }) {
  const action = useAction();
  const onSubmit = submitWith(action, async (f) => {
    await slice('UpdateSlice', { name: s.name, description: f.get('description').toString(), url: f.get('url').toString().trim() });
    reload();
    return 'Description and URL saved.';
  });
  return (
    <section aria-labelledby="details-h">
      <h2 id="details-h">Description</h2>
      <form onSubmit={onSubmit} key={`${s.description}|${s.url}`}>
        <Field label="Description" name="description" textarea rows="3" defaultValue={s.description} />
        <Field label="URL" name="url" type="url" defaultValue={s.url} />
        <Submit action={action}>Save description and URL</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}

// The latest time a request may carry (9999-12-31 23:59:59 UTC): an admin's
// maxExpiresAt, who has no bound.
const kLatestTime = 253402300799;

function Renew({ s, reload }) {
  const action = useAction();
  // maxExpiresAt: the latest expiry RenewSlice accepts from this caller now (0:
  // none; absent from a PLC older than the field).
  const known = s.maxExpiresAt !== undefined;
  const max = seconds(s.maxExpiresAt);
  const unbounded = max >= kLatestTime;
  const proposal = unbounded || !known ? Math.max(seconds(s.expiresAt), nowSeconds()) + 28 * kDay : max;
  const onSubmit = submitWith(action, async (f) => {
    const expiresAt = fromLocalInput(f.get('expiresAt').toString());
    if (!expiresAt) throw new Error('Choose the new expiry date and time.');
    const renewed = await slice('RenewSlice', { name: s.name, expiresAt: String(expiresAt) });
    reload();
    return `Renewed: ${renewed.name} now expires ${formatTime(renewed.expiresAt)} (${formatRelative(renewed.expiresAt)}).`;
  });
  let rule;
  if (!known) rule = 'PLC limits how far ahead a slice may be renewed; it says so if the date is too late.';
  else if (unbounded) rule = 'As an admin you may renew it to any date.';
  else if (max) rule = `You may renew up to ${formatTime(max)} (${formatRelative(max)}).`;
  else rule = 'PLC would accept no renewal from you now: a slice needs a description and a URL, and only its members, its site\'s PIs and admins may renew it.';
  return (
    <section aria-labelledby="renew-h">
      <h2 id="renew-h">Renew</h2>
      <p>{rule}</p>
      <form onSubmit={onSubmit} key={`${s.expiresAt}|${max}`}>
        <Field label="New expiry (your local time)" name="expiresAt" type="datetime-local" required
          defaultValue={toLocalInput(known && !max ? s.expiresAt : proposal)} />
        <Submit action={action}>Renew slice</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}

function Members({ s, reload }) {
  const action = useAction();
  const onAdd = submitWith(action, async (f, form) => {
    const emails = splitList(f.get('emails').toString());
    await slice('AddSliceMembers', { name: s.name, emails });
    form.reset();
    reload();
    return `Added ${emails.join(', ')}.`;
  });
  const remove = (email) =>
    action.run(async () => {
      await slice('RemoveSliceMembers', { name: s.name, emails: [email] });
      reload();
      return `Removed ${email}.`;
    });
  return (
    <section aria-labelledby="members-h">
      <h2 id="members-h">Members</h2>
      <Table
        caption="Slice members"
        columns={['Email', 'Actions']}
        empty="no members."
        rows={(s.members || []).map((email) => ({
          key: email,
          cells: [
            email,
            <button type="button" disabled={action.busy} onClick={() => remove(email)}>
              Remove {email}
            </button>,
          ],
        }))}
      />
      <form onSubmit={onAdd}>
        <Field label="Add members (emails, separated by commas or spaces)" name="emails" required />
        <Submit action={action}>Add members</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}

const kContactFilters = {
  any: ['any time', () => true],
  hour: ['within the last hour', (age) => age !== null && age <= 3600],
  day: ['within the last day', (age) => age !== null && age <= 86400],
  older: ['more than a day ago', (age) => age !== null && age > 86400],
  never: ['never', (age) => age === null],
};

// The state of this slice's sliver on a node, from the node's latest report.
function sliverState(sliceName, node, status, inSlice) {
  if (!status) return inSlice ? 'no status known' : '—';
  const failure = (((status.report || {}).health || {}).sliversFailed || []).find((f) => f.sliceName === sliceName);
  const node_ = status.down ? 'node down' : 'node up';
  if (!inSlice) return node_;
  if (failure) return `${node_}; sliver FAILED since ${formatTime(failure.since)}: ${failure.reason}`;
  if (!seconds(status.receivedAt)) return `${node_}; no report yet`;
  return `${node_}; no failure reported`;
}

async function loadNodes() {
  const [nodes, groups] = await Promise.all([admin('GetNodes', {}), admin('GetNodeGroups', {})]);
  let status = null;
  let statusError = null;
  try {
    status = await admin('GetNodeStatus', {});
  } catch (e) {
    statusError = e;
  }
  return { nodes: nodes.nodes || [], groups: groups.nodegroups || [], status, statusError };
}

function Nodes({ s, reload }) {
  const load = useLoad(loadNodes, [s.name]);
  return (
    <section aria-labelledby="nodes-h">
      <h2 id="nodes-h">Nodes</h2>
      <Loading load={load}>{(data) => <NodePicker s={s} data={data} reload={() => { reload(); load.reload(); }} />}</Loading>
    </section>
  );
}

function NodePicker({ s, data, reload }) {
  const [filters, setFilters] = useState({ site: '', group: '', tag: '', boot: '', contact: 'any', member: '' });
  const [selected, setSelected] = useState(() => new Set());
  const action = useAction();
  const inSlice = useMemo(() => new Set(s.nodes || []), [s.nodes]);
  const statusOf = useMemo(() => new Map(((data.status && data.status.nodes) || []).map((n) => [n.hostname, n])), [data.status]);
  const now = seconds(data.status && data.status.now) || nowSeconds();
  const live = data.nodes.filter((n) => !seconds(n.deletedAt));
  const sites = [...new Set(live.map((n) => n.loginBase))].sort();
  const boots = [...new Set(live.map((n) => n.bootState))].sort();

  const [tagKey, tagValue] = filters.tag.includes('=') ? filters.tag.split(/=(.*)/s) : [filters.tag, null];
  // The slice's own nodes first, then by name.
  const ordered = [...live].sort((a, b) => (inSlice.has(b.hostname) - inSlice.has(a.hostname)) || a.hostname.localeCompare(b.hostname));
  const shown = ordered.filter((n) => {
    if (filters.site && n.loginBase !== filters.site) return false;
    if (filters.group && !(n.nodegroups || []).includes(filters.group)) return false;
    if (filters.boot && n.bootState !== filters.boot) return false;
    if (filters.member === 'in' && !inSlice.has(n.hostname)) return false;
    if (filters.member === 'out' && inSlice.has(n.hostname)) return false;
    if (tagKey.trim()) {
      const tags = n.tags || {};
      if (!(tagKey.trim() in tags)) return false;
      if (tagValue !== null && tags[tagKey.trim()] !== tagValue.trim()) return false;
    }
    const contact = seconds(n.lastContact);
    if (!kContactFilters[filters.contact][1](contact ? now - contact : null)) return false;
    return true;
  });

  const set = (key) => (e) => setFilters({ ...filters, [key]: e.currentTarget.value });
  const toggle = (hostname) => {
    const next = new Set(selected);
    if (next.has(hostname)) next.delete(hostname);
    else next.add(hostname);
    setSelected(next);
  };
  const allShown = shown.length > 0 && shown.every((n) => selected.has(n.hostname));
  const toggleAll = () => {
    const next = new Set(selected);
    for (const n of shown) allShown ? next.delete(n.hostname) : next.add(n.hostname);
    setSelected(next);
  };
  const chosen = [...selected];
  const change = (method, verb) =>
    action.run(async () => {
      const hostnames = method === 'AddSliceNodes' ? chosen.filter((h) => !inSlice.has(h)) : chosen.filter((h) => inSlice.has(h));
      if (!hostnames.length) throw new Error(`None of the selected nodes can be ${verb}.`);
      await slice(method, { name: s.name, hostnames });
      setSelected(new Set());
      reload();
      return `${verb === 'added' ? 'Added' : 'Removed'} ${hostnames.length} node(s): ${hostnames.join(', ')}.`;
    });

  return (
    <>
      {data.statusError && <ErrorMessage error={new Error(`Node status unavailable: ${data.statusError.message}`)} />}
      <fieldset class="filters">
        <legend>Filter nodes</legend>
        <Field label="Site" select value={filters.site} onChange={set('site')}>
          <option value="">any site</option>
          {sites.map((x) => <option value={x}>{x}</option>)}
        </Field>
        <Field label="Node group" select value={filters.group} onChange={set('group')}>
          <option value="">any group</option>
          {data.groups.map((g) => <option value={g.name}>{g.name} ({g.tag}={g.value})</option>)}
        </Field>
        <Field label="Tag (key or key=value)" value={filters.tag} onInput={set('tag')} />
        <Field label="Boot state" select value={filters.boot} onChange={set('boot')}>
          <option value="">any</option>
          {boots.map((x) => <option value={x}>{x}</option>)}
        </Field>
        <Field label="Last contact" select value={filters.contact} onChange={set('contact')}>
          {Object.entries(kContactFilters).map(([k, [label]]) => <option value={k}>{label}</option>)}
        </Field>
        <Field label="In this slice" select value={filters.member} onChange={set('member')}>
          <option value="">in it or not</option>
          <option value="in">in this slice</option>
          <option value="out">not in this slice</option>
        </Field>
      </fieldset>
      <p aria-live="polite">
        {shown.length} of {live.length} nodes shown; {selected.size} selected; {inSlice.size} in the slice.
      </p>
      <Checkbox label="Select every node shown" checked={allShown} onChange={toggleAll} />
      <Table
        caption={`Nodes (${s.name} is on ${inSlice.size})`}
        columns={['Hostname', 'Site', 'Boot state', 'Last contact', 'Node groups', 'In slice', 'Sliver state']}
        empty="no node matches the filters."
        rows={shown.map((n) => {
          const id = `node-${n.hostname}`;
          return {
            key: n.hostname,
            className: inSlice.has(n.hostname) ? 'in-slice' : undefined,
            cells: [
              <span class="pick">
                <input type="checkbox" id={id} checked={selected.has(n.hostname)} onChange={() => toggle(n.hostname)} />
                <label for={id}>{n.hostname}</label>
              </span>,
              n.loginBase,
              n.bootState,
              seconds(n.lastContact) ? formatRelative(n.lastContact, now) : 'never',
              (n.nodegroups || []).join(', '),
              inSlice.has(n.hostname) ? 'yes' : 'no',
              sliverState(s.name, n, statusOf.get(n.hostname), inSlice.has(n.hostname)),
            ],
          };
        })}
      />
      <div class="actions">
        <button type="button" disabled={action.busy || !selected.size} onClick={() => change('AddSliceNodes', 'added')}>
          Add selected nodes to the slice
        </button>{' '}
        <button type="button" disabled={action.busy || !selected.size} onClick={() => change('RemoveSliceNodes', 'removed')}>
          Remove selected nodes from the slice
        </button>
      </div>
      <Outcome action={action} />
    </>
  );
}

// What a tag type means, before a tag of it is set (here and on Admin → Nodes).
export function TagTypeInfo({ type }) {
  if (!type) return null;
  return (
    <dl class="facts tag-type" aria-live="polite">
      <dt>Description</dt>
      <dd>{type.description || '—'}</dd>
      <dt>Value kind (unit)</dt>
      <dd>{type.valueKind}</dd>
      <dt>Default</dt>
      <dd>{type.defaultValue === '' ? 'none' : <code>{type.defaultValue}</code>}</dd>
      <dt>Who may set it</dt>
      <dd>{type.minRole} and above</dd>
    </dl>
  );
}

function Tags({ s }) {
  const load = useLoad(async () => {
    const [tags, types, groups] = await Promise.all([
      slice('GetSliceTags', { slice: s.name }), admin('GetTagTypes', {}), admin('GetNodeGroups', {}),
    ]);
    return { tags: tags.tags || [], types: types.tagTypes || [], groups: groups.nodegroups || [] };
  }, [s.name]);
  return (
    <section aria-labelledby="tags-h">
      <h2 id="tags-h">Slice tags</h2>
      <Loading load={load}>{(data) => <TagEditor s={s} data={data} reload={load.reload} />}</Loading>
    </section>
  );
}

function TagEditor({ s, data, reload }) {
  const sliceTypes = data.types.filter((t) => (t.category || '').startsWith('slice'));
  const types = sliceTypes.length ? sliceTypes : data.types;
  const byName = new Map(data.types.map((t) => [t.name, t]));
  const [chosen, setChosen] = useState(types.length ? types[0].name : '');
  const action = useAction();
  const onSet = submitWith(action, async (f) => {
    const request = { slice: s.name, tag: f.get('tag').toString(), value: f.get('value').toString() };
    const scope = f.get('scope').toString();
    if (scope.startsWith('node:')) request.node = scope.slice(5);
    if (scope.startsWith('group:')) request.nodegroup = scope.slice(6);
    const tag = await slice('SetSliceTag', request);
    reload();
    return `Tag ${tag.tag} set to "${tag.value}"${tag.node ? ` on ${tag.node}` : ''}${tag.nodegroup ? ` on group ${tag.nodegroup}` : ''}.`;
  });
  const remove = (t) =>
    action.run(async () => {
      await slice('DeleteSliceTag', { sliceTagId: t.sliceTagId });
      reload();
      return `Tag ${t.tag} deleted.`;
    });
  const scopeOf = (t) => (t.node ? `node ${t.node}` : t.nodegroup ? `group ${t.nodegroup}` : 'every node');
  return (
    <>
      <Table
        caption={`Tags of ${s.name}`}
        columns={['Tag', 'Value', 'Scope', 'Kind (unit)', 'Default', 'Who may set it', 'Description', 'Actions']}
        empty="no tags set; defaults apply."
        rows={data.tags.map((t) => {
          const type = byName.get(t.tag) || {};
          return {
            key: t.sliceTagId,
            cells: [
              t.tag,
              <code>{t.value}</code>,
              scopeOf(t),
              type.valueKind || '',
              type.defaultValue || 'none',
              type.minRole || '',
              type.description || '',
              <button type="button" disabled={action.busy} onClick={() => remove(t)}>
                Delete tag {t.tag}
              </button>,
            ],
          };
        })}
      />
      <form onSubmit={onSet}>
        <Field label="Tag" name="tag" select value={chosen} onChange={(e) => setChosen(e.currentTarget.value)}>
          {types.map((t) => <option value={t.name}>{t.name} — {t.valueKind}</option>)}
        </Field>
        <TagTypeInfo type={byName.get(chosen)} />
        <Field label="Value" name="value" textarea rows="2" required />
        <Field label="Scope" name="scope" select
          hint="A tag for one node wins over one for its node group, which wins over one for every node.">
          <option value="">every node of the slice</option>
          {(s.nodes || []).length > 0 && (
            <optgroup label="One node of the slice">
              {s.nodes.map((h) => <option value={`node:${h}`}>node {h}</option>)}
            </optgroup>
          )}
          {data.groups.length > 0 && (
            <optgroup label="A node group (its nodes in the slice)">
              {data.groups.map((g) => <option value={`group:${g.name}`}>group {g.name} ({g.tag}={g.value}, {(g.hostnames || []).length} nodes)</option>)}
            </optgroup>
          )}
        </Field>
        <Submit action={action}>Set tag</Submit>
      </form>
      <Outcome action={action} />
    </>
  );
}

function Ticket({ s }) {
  const action = useAction();
  const download = () =>
    action.run(async () => {
      const ticket = await slice('GetSliceTicket', { slice: s.name });
      const blob = new Blob([JSON.stringify(ticket, null, 2) + '\n'], { type: 'application/json' });
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `${s.name}.ticket.json`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      return `Ticket for ${s.name} downloaded as ${s.name}.ticket.json (signed by key ${ticket.keyId}).`;
    });
  return (
    <section aria-labelledby="ticket-h">
      <h2 id="ticket-h">Ticket</h2>
      <p>A ticket signed by PLC lets a node create this slice's sliver (delegated slices).</p>
      <button type="button" disabled={action.busy} onClick={download}>
        Download ticket
      </button>
      <Outcome action={action} />
    </section>
  );
}

function DeleteSlice({ s }) {
  const action = useAction();
  const onConfirm = () =>
    action.run(async () => {
      await slice('DeleteSlice', { name: s.name });
      navigate('slices');
    });
  return (
    <section aria-labelledby="delete-h">
      <h2 id="delete-h">Delete</h2>
      <p>Deleting the slice removes its slivers from every node.</p>
      <ConfirmButton label="Delete slice" question={`Really delete ${s.name}?`} confirmLabel={`Yes, delete ${s.name}`}
        onConfirm={onConfirm} disabled={action.busy} />
      <Outcome action={action} />
    </section>
  );
}
