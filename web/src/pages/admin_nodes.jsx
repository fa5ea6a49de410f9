// Admin → Nodes: every node with its latest status; adding a node (AddNode),
// and per node its boot state (UpdateNode), its tags (SetNodeTag,
// DeleteNodeTag) and deleting it (DeleteNode).
import { useState } from 'preact/hooks';
import { admin } from '../api.js';
import { addNodeBody } from '../admin_requests.js';
import {
  ConfirmButton, Field, Loading, Outcome, Submit, Table, submitWith, useAction, useFocusOnShow, useLoad,
} from '../components.jsx';
import { formatBytes, formatRelative, formatTime, seconds } from '../format.js';
import { nodeKeyHex } from '../node_key.js';
import { TagTypeInfo } from './slice.jsx';

// What PLC accepts (plc/validate.cpp, validateBootState). Only "disabled" acts
// at PLC: such a node may not log in, and its sessions end.
const kBootStates = [
  ['boot', 'boot — in service'],
  ['safeboot', 'safeboot — up for maintenance'],
  ['reinstall', 'reinstall — to be reinstalled'],
  ['disabled', 'disabled — may not log in to PLC'],
];

// (`selected` rather than the select's value: the form is uncontrolled.)
function BootStateOptions({ current }) {
  return kBootStates.map(([value, label]) => <option value={value} selected={value === current}>{label}</option>);
}

const tagsText = (tags) => Object.entries(tags || {}).map(([k, v]) => `${k}=${v}`).join(', ');

async function loadNodes() {
  const [nodes, status, sites, types] = await Promise.all([
    admin('GetNodes', {}), admin('GetNodeStatus', {}), admin('GetSites', {}), admin('GetTagTypes', {}),
  ]);
  return {
    nodes: (nodes.nodes || []).filter((n) => !seconds(n.deletedAt)),
    status: new Map((status.nodes || []).map((n) => [n.hostname, n])),
    now: seconds(status.now),
    sites: (sites.sites || []).filter((s) => !seconds(s.deletedAt)).sort((a, b) => a.loginBase.localeCompare(b.loginBase)),
    // Node tags take tag types of a "node..." category (plc/admin_nodes.cpp).
    nodeTagTypes: (types.tagTypes || []).filter((t) => (t.category || '').startsWith('node')),
  };
}

export function Nodes() {
  const load = useLoad(loadNodes, []);
  const [managing, setManaging] = useState('');
  // Deleting closes the node's panel: its outcome is shown here.
  const removal = useAction();
  const remove = (n) =>
    removal.run(async () => {
      await admin('DeleteNode', { hostname: n.hostname });
      setManaging('');
      load.reload();
      return `Node ${n.hostname} deleted.`;
    });
  return (
    <Loading load={load}>
      {(data) => {
        const managed = data.nodes.find((n) => n.hostname === managing);
        return (
          <>
            <Outcome action={removal} />
            <NodeTable data={data} managing={managing} manage={setManaging} />
            {managed && (
              <NodePanel key={managed.hostname} node={managed} data={data} reload={load.reload}
                remove={() => remove(managed)} busy={removal.busy} close={() => setManaging('')} />
            )}
            <AddNode sites={data.sites} reload={load.reload} />
          </>
        );
      }}
    </Loading>
  );
}

// Actions come next to the hostname: the table is wider than most screens.
function NodeTable({ data, managing, manage }) {
  return (
    <Table
      caption="Nodes"
      columns={['Hostname', 'Actions', 'Site', 'Boot state', 'Last contact', 'Up', 'Load (1 min)', 'Memory free', 'Slivers running', 'Slivers failed', 'Tags', 'Groups', 'Slices']}
      rows={data.nodes.map((n) => {
        const st = data.status.get(n.hostname);
        const health = (st && st.report && st.report.health) || null;
        return {
          key: n.hostname,
          cells: [
            n.hostname,
            // The row names the node already; the button's name does too, for screen readers.
            <button type="button" aria-label={`Manage ${n.hostname}`} aria-expanded={managing === n.hostname}
              onClick={() => manage(managing === n.hostname ? '' : n.hostname)}>
              Manage
            </button>,
            n.loginBase,
            n.bootState,
            seconds(n.lastContact) ? formatRelative(n.lastContact, data.now || undefined) : 'never',
            st ? (st.down ? 'DOWN' : 'up') : '—',
            health ? health.load1.toFixed(2) : '—',
            health ? formatBytes(health.memoryAvailableBytes) : '—',
            health ? health.sliversRunning : '—',
            health ? (health.sliversFailed || []).map((f) => `${f.sliceName}: ${f.reason}`).join('; ') || 'none' : '—',
            tagsText(n.tags) || 'none',
            (n.nodegroups || []).join(', '),
            (n.slices || []).length,
          ],
        };
      })}
    />
  );
}

// One node: its key, boot state and tags, and deleting it.
function NodePanel({ node, data, reload, remove, busy, close }) {
  const heading = useFocusOnShow([node.hostname]);
  const id = `node-panel-${node.hostname}`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id} tabindex="-1" ref={heading}>Node {node.hostname}</h2>
      <dl class="facts">
        <dt>Site</dt>
        <dd>{node.loginBase}</dd>
        <dt>Public key (hex)</dt>
        <dd>
          <code>{nodeKeyHex(node.publicKey)}</code>
        </dd>
        <dt>Added</dt>
        <dd>{formatTime(node.createdAt)}</dd>
        <dt>Slices</dt>
        <dd>{(node.slices || []).join(', ') || 'none'}</dd>
      </dl>
      <BootState node={node} reload={reload} />
      <NodeTags node={node} types={data.nodeTagTypes} reload={reload} />
      <h3>Delete</h3>
      <p>A deleted node leaves its slices (with their tags for it) and node groups, and its sessions at PLC end.</p>
      <ConfirmButton label={`Delete node ${node.hostname}`} question={`Really delete node ${node.hostname}?`}
        confirmLabel={`Yes, delete ${node.hostname}`} onConfirm={remove} disabled={busy} />{' '}
      <button type="button" onClick={close}>
        Close
      </button>
    </section>
  );
}

function BootState({ node, reload }) {
  const action = useAction();
  const onSubmit = submitWith(action, async (f) => {
    const updated = await admin('UpdateNode', { hostname: node.hostname, bootState: f.get('bootState').toString() });
    reload();
    return `${updated.hostname} is now in boot state ${updated.bootState}.`;
  });
  return (
    <>
      <h3>Boot state</h3>
      <form class="inline" onSubmit={onSubmit} key={node.bootState}>
        <Field label={`Boot state of ${node.hostname}`} name="bootState" select>
          <BootStateOptions current={node.bootState} />
        </Field>
        <Submit action={action}>Change boot state</Submit>
      </form>
      <Outcome action={action} />
    </>
  );
}

function NodeTags({ node, types, reload }) {
  const action = useAction();
  const [chosen, setChosen] = useState(types.length ? types[0].name : '');
  const byName = new Map(types.map((t) => [t.name, t]));
  const onSet = submitWith(action, async (f) => {
    const tag = f.get('tag').toString();
    const updated = await admin('SetNodeTag', { hostname: node.hostname, tag, value: f.get('value').toString() });
    reload();
    return `Tag ${tag} of ${updated.hostname} set to "${(updated.tags || {})[tag]}".`;
  });
  const remove = (tag) =>
    action.run(async () => {
      await admin('DeleteNodeTag', { hostname: node.hostname, tag });
      reload();
      return `Tag ${tag} of ${node.hostname} deleted.`;
    });
  return (
    <>
      <h3>Tags</h3>
      <Table
        caption={`Tags of ${node.hostname}`}
        columns={['Tag', 'Value', 'Description', 'Actions']}
        empty="no tags."
        rows={Object.entries(node.tags || {}).map(([tag, value]) => ({
          key: tag,
          cells: [
            tag,
            <code>{value}</code>,
            (byName.get(tag) || {}).description || '',
            <button type="button" disabled={action.busy} onClick={() => remove(tag)}>
              Delete tag {tag}
            </button>,
          ],
        }))}
      />
      {types.length ? (
        <form onSubmit={onSet}>
          <Field label="Node tag" name="tag" select value={chosen} onChange={(e) => setChosen(e.currentTarget.value)}>
            {types.map((t) => <option value={t.name}>{t.name} — {t.valueKind}</option>)}
          </Field>
          <TagTypeInfo type={byName.get(chosen)} />
          <Field label="Tag value" name="value" required />
          <Submit action={action}>Set node tag</Submit>
        </form>
      ) : (
        <p>No tag type has a node category: add one under Tag types.</p>
      )}
      <Outcome action={action} />
    </>
  );
}

function AddNode({ sites, reload }) {
  const action = useAction();
  const onSubmit = submitWith(action, async (f, form) => {
    // Refuses a key that is not 32 bytes before anything is sent.
    const body = addNodeBody(f);
    const node = await admin('AddNode', body);
    form.reset();
    reload();
    return `Node ${node.hostname} added at ${node.loginBase} (boot state ${node.bootState}).`;
  });
  return (
    <section aria-labelledby="add-node-h">
      <h2 id="add-node-h">Add a node</h2>
      {sites.length ? (
        <form onSubmit={onSubmit}>
          <Field label="Hostname" name="hostname" required placeholder="planetlab1.example.edu" hint="The node's fully qualified DNS name." />
          <Field label="Site" name="loginBase" select required>
            {sites.map((s) => <option value={s.loginBase}>{s.loginBase} — {s.name}{s.pending ? ' (pending approval)' : ''}</option>)}
          </Field>
          <Field label="Public key" name="publicKey" textarea rows="2" required class="token"
            hint="The node's Ed25519 public key: 64 hex digits, as public_key_hex of plcctl node keygen, or base64 of its 32 bytes." />
          <Field label="Boot state" name="bootState" select>
            <BootStateOptions current="boot" />
          </Field>
          <Submit action={action}>Add node</Submit>
        </form>
      ) : (
        <p>There is no site to add a node to: add a site first.</p>
      )}
      <Outcome action={action} />
    </section>
  );
}
