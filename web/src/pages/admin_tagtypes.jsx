// Admin → Tag types: the list, adding a type (AddTagType), changing its
// description, least role and default (UpdateTagType), deleting it (DeleteTagType).
import { useState } from 'preact/hooks';
import { admin } from '../api.js';
import { addTagTypeBody, updateTagTypeBody } from '../admin_requests.js';
import {
  ConfirmButton, Field, Loading, Outcome, Submit, Table, submitWith, useAction, useFocusOnShow, useLoad,
} from '../components.jsx';

// PLC gives a category meaning by its start only: "slice..." types are slice
// tags, "node..." types node tags and node groups (plc/slice_service.cpp,
// plc/admin_nodes.cpp). These are the ones PLC ships; any other a type already
// has is offered too.
const kCategories = [
  ['slice/rspec', "slice tag: a sliver's resources"],
  ['slice/config', 'slice tag: how a sliver is set up'],
  ['slice/privilege', 'slice tag: what a sliver may do beyond the usual'],
  ['node', 'node tag (node groups select nodes by it)'],
];

// Least role allowed to set a tag of the type, most powerful first.
const kRoles = ['admin', 'pi', 'tech', 'user'];

// plc/validate.cpp, canonicalTagValue: how each kind of value is read.
const kValueKinds = [
  ['string', 'string — any text'],
  ['int', 'int — a whole number, 0 or more'],
  ['bytes', 'bytes — e.g. 128M, 5G or 134217728'],
  ['rate', 'rate — bit/s, e.g. 5kbit, 10Mbit'],
  ['bool', 'bool — true or false'],
  ['ports', 'ports — e.g. tcp:80,udp:53,tcp:6000-6010'],
  ['capabilities', 'capabilities — e.g. CAP_NET_RAW'],
];

function RoleOptions({ current }) {
  return kRoles.map((r) => <option value={r} selected={r === current}>{r}</option>);
}

export function TagTypes() {
  const load = useLoad(() => admin('GetTagTypes', {}), []);
  const action = useAction();
  const [editing, setEditing] = useState('');
  const remove = (t) =>
    action.run(async () => {
      await admin('DeleteTagType', { name: t.name });
      if (editing === t.name) setEditing('');
      load.reload();
      return `Tag type ${t.name} deleted.`;
    });
  return (
    <Loading load={load}>
      {(data) => {
        const types = data.tagTypes || [];
        const edited = types.find((t) => t.name === editing);
        const categories = [...kCategories];
        for (const c of new Set(types.map((t) => t.category))) {
          if (c && !categories.some(([k]) => k === c)) categories.push([c, 'in use']);
        }
        return (
          <>
            <Outcome action={action} />
            <Table
              caption="Tag types"
              columns={['Name', 'Category', 'Value kind', 'Default', 'Least role to set', 'Description', 'Actions']}
              rows={types.map((t) => ({
                key: t.name,
                cells: [
                  t.name, t.category, t.valueKind, t.defaultValue === '' ? 'none' : <code>{t.defaultValue}</code>, t.minRole, t.description,
                  <span class="actions">
                    <button type="button" aria-expanded={editing === t.name} onClick={() => setEditing(editing === t.name ? '' : t.name)}>
                      Edit {t.name}
                    </button>{' '}
                    <ConfirmButton label={`Delete ${t.name}`} question={`Delete tag type ${t.name}?`}
                      confirmLabel={`Yes, delete ${t.name}`} onConfirm={() => remove(t)} disabled={action.busy} />
                  </span>,
                ],
              }))}
            />
            {edited && <TagTypeEditor key={edited.name} type={edited} reload={load.reload} close={() => setEditing('')} />}
            <AddTagType categories={categories} reload={load.reload} />
          </>
        );
      }}
    </Loading>
  );
}

// Name, category and value kind stay as they are: tags already set were read by them.
function TagTypeEditor({ type, reload, close }) {
  const action = useAction();
  const heading = useFocusOnShow([type.name]);
  const onSubmit = submitWith(action, async (f) => {
    const t = await admin('UpdateTagType', updateTagTypeBody(type, f));
    reload();
    return `Tag type ${t.name} saved (least role ${t.minRole}, default ${t.defaultValue === '' ? 'none' : `"${t.defaultValue}"`}).`;
  });
  const id = `edit-tagtype-${type.name}`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id} tabindex="-1" ref={heading}>Edit tag type {type.name}</h2>
      <p>
        Category {type.category}, value kind {type.valueKind}: these stay as they are, since tags already set were read by them.
      </p>
      <form onSubmit={onSubmit} key={`${type.description}|${type.minRole}|${type.defaultValue}`}>
        <Field label="Description" name="description" textarea rows="2" defaultValue={type.description} />
        <Field label="Least role to set it" name="minRole" select>
          <RoleOptions current={type.minRole} />
        </Field>
        <Field label="Default value" name="defaultValue" defaultValue={type.defaultValue}
          hint={`A ${type.valueKind} value; empty for none. Slice tag types only: it applies to every sliver without a tag of this type.`} />
        <Submit action={action}>Save tag type {type.name}</Submit>{' '}
        <button type="button" onClick={close}>
          Close
        </button>
      </form>
      <Outcome action={action} />
    </section>
  );
}

function AddTagType({ categories, reload }) {
  const action = useAction();
  const onSubmit = submitWith(action, async (f, form) => {
    const t = await admin('AddTagType', addTagTypeBody(f));
    form.reset();
    reload();
    return `Tag type ${t.name} added (${t.category}, ${t.valueKind}).`;
  });
  return (
    <section aria-labelledby="add-tagtype-h">
      <h2 id="add-tagtype-h">Add a tag type</h2>
      <form onSubmit={onSubmit}>
        <Field label="Name" name="name" required hint="1–64 lower-case letters, digits, _, . and -, starting with a letter or digit." />
        <Field label="Description" name="description" textarea rows="2" hint="What the tag means, with its unit: users read it before they set a tag." />
        <Field label="Category" name="category" select>
          {categories.map(([value, what]) => <option value={value}>{value} — {what}</option>)}
        </Field>
        <Field label="Least role to set it" name="minRole" select>
          <RoleOptions current="admin" />
        </Field>
        <Field label="Value kind" name="valueKind" select>
          {kValueKinds.map(([value, label]) => <option value={value}>{label}</option>)}
        </Field>
        <Field label="Default value" name="defaultValue" hint="Empty for none. Slice tag types only: it applies to every sliver without a tag of this type." />
        <Submit action={action}>Add tag type</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}
