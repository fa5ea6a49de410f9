// PLC administration: the admin pages' navigation; node groups, the
// destination blacklist, PLC's keys and the event log. Sites, nodes and tag
// types, each with its forms, have files of their own (admin_*.jsx).
import { useState } from 'preact/hooks';
import { admin } from '../api.js';
import { ConfirmButton, Field, Loading, Outcome, Submit, Table, submitWith, useAction, useLoad } from '../components.jsx';
import { formatTime, fromLocalInput } from '../format.js';
import { Nodes } from './admin_nodes.jsx';
import { Sites } from './admin_sites.jsx';
import { TagTypes } from './admin_tagtypes.jsx';

export const kAdminPages = [
  ['sites', 'Sites'],
  ['nodes', 'Nodes'],
  ['nodegroups', 'Node groups'],
  ['tagtypes', 'Tag types'],
  ['blacklist', 'Blacklist'],
  ['plckeys', 'PLC keys'],
  ['events', 'Events'],
];

export function AdminPage({ page }) {
  const Page = { sites: Sites, nodes: Nodes, nodegroups: NodeGroups, tagtypes: TagTypes, blacklist: Blacklist, plckeys: PlcKeys, events: Events }[page] || Sites;
  const title = (kAdminPages.find(([k]) => k === page) || kAdminPages[0])[1];
  return (
    <section>
      <h1 tabindex="-1">Admin: {title}</h1>
      <nav aria-label="Admin pages" class="subnav">
        <ul>
          {kAdminPages.map(([k, label]) => (
            <li>
              <a href={`#/admin/${k}`} aria-current={k === page ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <Page />
    </section>
  );
}

function NodeGroups() {
  const load = useLoad(() => admin('GetNodeGroups', {}), []);
  const action = useAction();
  const onAdd = submitWith(action, async (f, form) => {
    const g = await admin('AddNodeGroup', { name: f.get('name'), tag: f.get('tag'), value: f.get('value') });
    form.reset();
    load.reload();
    return `Node group ${g.name} added (${(g.hostnames || []).length} nodes).`;
  });
  const remove = (g) =>
    action.run(async () => {
      await admin('DeleteNodeGroup', { name: g.name });
      load.reload();
      return `Node group ${g.name} deleted.`;
    });
  return (
    <>
      <Loading load={load}>
        {(data) => (
          <Table
            caption="Node groups (every live node whose tag equals the value)"
            columns={['Name', 'Tag', 'Value', 'Nodes', 'Actions']}
            rows={(data.nodegroups || []).map((g) => ({
              key: g.name,
              cells: [g.name, g.tag, g.value, (g.hostnames || []).join(', ') || 'none',
                <ConfirmButton label={`Delete ${g.name}`} question={`Delete node group ${g.name}?`} onConfirm={() => remove(g)} />],
            }))}
          />
        )}
      </Loading>
      <Outcome action={action} />
      <form onSubmit={onAdd}>
        <h2>Add a node group</h2>
        <Field label="Group name" name="name" required />
        <Field label="Node tag" name="tag" required />
        <Field label="Tag value" name="value" required />
        <Submit action={action}>Add node group</Submit>
      </form>
    </>
  );
}

function Blacklist() {
  const load = useLoad(() => admin('GetBlacklist', {}), []);
  const action = useAction();
  const onAdd = submitWith(action, async (f, form) => {
    const e = await admin('AddBlacklistEntry', { prefix: f.get('prefix').toString().trim(), reason: f.get('reason') });
    form.reset();
    load.reload();
    return `${e.prefix} blacklisted.`;
  });
  const remove = (e) =>
    action.run(async () => {
      await admin('DeleteBlacklistEntry', { entryId: e.entryId });
      load.reload();
      return `${e.prefix} removed from the blacklist.`;
    });
  return (
    <>
      <p>Destinations no slice may send to; nodes receive the list with their state.</p>
      <Loading load={load}>
        {(data) => (
          <Table
            caption="Destination blacklist"
            columns={['Prefix', 'Reason', 'Added', 'Actions']}
            empty="empty."
            rows={(data.entries || []).map((e) => ({
              key: e.entryId,
              cells: [e.prefix, e.reason, formatTime(e.createdAt),
                <ConfirmButton label={`Remove ${e.prefix}`} question={`Remove ${e.prefix} from the blacklist?`} onConfirm={() => remove(e)} />],
            }))}
          />
        )}
      </Loading>
      <Outcome action={action} />
      <form onSubmit={onAdd}>
        <h2>Blacklist a destination</h2>
        <Field label="Prefix (CIDR, IPv4 or IPv6)" name="prefix" required placeholder="192.0.2.0/24" />
        <Field label="Reason" name="reason" textarea rows="2" required />
        <Submit action={action}>Add to blacklist</Submit>
      </form>
    </>
  );
}

function PlcKeys() {
  const load = useLoad(() => admin('GetPlcKeys', {}), []);
  return (
    <Loading load={load}>
      {(data) => (
        <Table
          caption="PLC ticket-signing keys"
          columns={['Key id', 'Public key (base64)', 'Created', 'Retired after', 'Signs new tickets']}
          rows={(data.keys || []).map((k) => ({
            key: k.keyId,
            cells: [k.keyId, <code>{k.publicKey}</code>, formatTime(k.createdAt), formatTime(k.notAfter, 'in use'), k.keyId === data.signingKeyId ? 'yes' : 'no'],
          }))}
        />
      )}
    </Loading>
  );
}

function Events() {
  const [query, setQuery] = useState(null);
  const action = useAction();
  const [events, setEvents] = useState(null);
  const onSearch = submitWith(action, async (f) => {
    const request = {
      caller: f.get('caller').toString().trim(),
      method: f.get('method').toString().trim(),
      object: f.get('object').toString().trim(),
      since: String(fromLocalInput(f.get('since').toString())),
      limit: Number(f.get('limit') || 100),
    };
    const r = await admin('GetEvents', request);
    setQuery(request);
    setEvents(r.events || []);
    return `${(r.events || []).length} event(s) found.`;
  });
  return (
    <>
      <form onSubmit={onSearch} class="filters">
        <Field label="Caller" name="caller" hint="An email, node:<hostname> or anonymous." />
        <Field label="Method" name="method" hint="e.g. RenewSlice" />
        <Field label="Object" name="object" hint="e.g. slice:princeton_x or site:princeton" />
        <Field label="Since (your local time)" name="since" type="datetime-local" />
        <Field label="At most" name="limit" type="number" min="1" max="10000" defaultValue="100" />
        <Submit action={action}>Search events</Submit>
      </form>
      <Outcome action={action} />
      {events && (
        <Table
          caption={`Events${query.caller ? ` by ${query.caller}` : ''}${query.method ? ` of ${query.method}` : ''}${query.object ? ` on ${query.object}` : ''}, newest first`}
          columns={['When', 'Caller', 'Role', 'Method', 'Objects', 'Result', 'Message', 'Arguments', 'Duration']}
          empty="no events match."
          className="events"
          rows={events.map((e) => ({
            key: e.eventId,
            className: e.result === 'OK' ? undefined : 'failed',
            cells: [formatTime(e.at, '—', { withSeconds: true }), e.caller, e.roleUsed, e.method, (e.objects || []).join(', '), e.result, e.message, <code>{e.arguments}</code>, `${(Number(e.durationUs) / 1000).toFixed(1)} ms`],
          }))}
        />
      )}
    </>
  );
}
