// Admin → Sites: approving requested sites, adding a site (AddSite) and
// changing one (UpdateSite).
import { useState } from 'preact/hooks';
import { admin } from '../api.js';
import { addSiteBody, updateSiteBody } from '../admin_requests.js';
import {
  Checkbox, ConfirmButton, Field, Loading, Outcome, Submit, Table, submitWith, useAction, useFocusOnShow, useLoad,
} from '../components.jsx';
import { formatTime, seconds } from '../format.js';

export function Sites() {
  const load = useLoad(() => admin('GetSites', {}), []);
  const action = useAction();
  const [editing, setEditing] = useState('');
  const approve = (site) =>
    action.run(async () => {
      await admin('ApproveSite', { loginBase: site.loginBase });
      load.reload();
      return `Site ${site.loginBase} approved.`;
    });
  const remove = (site) =>
    action.run(async () => {
      await admin('DeleteSite', { loginBase: site.loginBase });
      if (editing === site.loginBase) setEditing('');
      load.reload();
      return `Site ${site.loginBase} deleted.`;
    });
  const contact = (s) => [s.techContactName, s.techContactEmail && `<${s.techContactEmail}>`].filter(Boolean).join(' ');
  return (
    <>
      <Loading load={load}>
        {(data) => {
          const sites = (data.sites || []).filter((s) => !seconds(s.deletedAt));
          const pending = sites.filter((s) => s.pending);
          const edited = sites.find((s) => s.loginBase === editing);
          return (
            <>
              <Outcome action={action} />
              <Table
                caption="Sites waiting for approval"
                columns={['Login base', 'Name', 'URL', 'Requested', 'Technical contact', 'Actions']}
                empty="no site is waiting."
                rows={pending.map((s) => ({
                  key: s.loginBase,
                  cells: [
                    s.loginBase,
                    s.name,
                    s.url,
                    formatTime(s.requestedAt),
                    contact(s),
                    <span class="actions">
                      <button type="button" disabled={action.busy} onClick={() => approve(s)}>
                        Approve {s.loginBase}
                      </button>{' '}
                      <ConfirmButton label={`Delete ${s.loginBase}`} question={`Refuse and delete site ${s.loginBase}?`}
                        confirmLabel="Yes, delete" onConfirm={() => remove(s)} />
                    </span>,
                  ],
                }))}
              />
              <Table
                caption="All sites"
                columns={['Login base', 'Name', 'URL', 'Enabled', 'Max slices', 'Max slivers', 'Created', 'Organizations', 'Actions']}
                rows={sites.map((s) => ({
                  key: s.loginBase,
                  cells: [
                    s.loginBase,
                    s.name,
                    s.url,
                    s.pending ? 'pending approval' : s.enabled ? 'yes' : 'no',
                    s.maxSlices,
                    s.maxSlivers,
                    formatTime(s.createdAt),
                    (s.organizations || []).join(', '),
                    <button type="button" aria-expanded={editing === s.loginBase} onClick={() => setEditing(editing === s.loginBase ? '' : s.loginBase)}>
                      Edit {s.loginBase}
                    </button>,
                  ],
                }))}
              />
              {edited && <SiteEditor key={edited.loginBase} site={edited} reload={load.reload} close={() => setEditing('')} />}
            </>
          );
        }}
      </Loading>
      <AddSite reload={load.reload} />
    </>
  );
}

// UpdateSite: sends only what the form changed. A pending site is enabled by
// approving it, so its form has no "enabled" box.
function SiteEditor({ site, reload, close }) {
  const action = useAction();
  const heading = useFocusOnShow([site.loginBase]);
  const onSubmit = submitWith(action, async (f) => {
    const updated = await admin('UpdateSite', updateSiteBody(site, f));
    reload();
    return `Site ${updated.loginBase} saved: ${updated.name}, ${updated.enabled ? 'enabled' : 'disabled'}, at most ${updated.maxSlices} slices and ${updated.maxSlivers} slivers.`;
  });
  const id = `edit-site-${site.loginBase}`;
  // Keyed by the values, so that the fields show the site as saved.
  const version = [site.name, site.url, site.enabled, site.maxSlices, site.maxSlivers, site.techContactName, site.techContactEmail].join('|');
  return (
    <section aria-labelledby={id}>
      <h2 id={id} tabindex="-1" ref={heading}>Edit site {site.loginBase}</h2>
      <form onSubmit={onSubmit} key={version}>
        <Field label="Site name" name="name" required defaultValue={site.name} />
        <Field label="Web site URL" name="url" type="url" defaultValue={site.url} hint="http:// or https://; may be empty." />
        <Field label="Max slices" name="maxSlices" type="number" min="0" step="1" required defaultValue={site.maxSlices} />
        <Field label="Max slivers" name="maxSlivers" type="number" min="0" step="1" required defaultValue={site.maxSlivers} />
        {site.pending ? (
          <p>This site is a pending request: approving it (above) enables it and its PI.</p>
        ) : (
          <Checkbox label="Enabled (its people may log in and its slices run)" name="enabled" defaultChecked={site.enabled} />
        )}
        <Field label="Technical contact name" name="techContactName" defaultValue={site.techContactName} />
        <Field label="Technical contact email" name="techContactEmail" type="email" defaultValue={site.techContactEmail} />
        <Submit action={action}>Save site {site.loginBase}</Submit>{' '}
        <button type="button" onClick={close}>
          Close
        </button>
      </form>
      <Outcome action={action} />
    </section>
  );
}

function AddSite({ reload }) {
  const action = useAction();
  const onSubmit = submitWith(action, async (f, form) => {
    const site = await admin('AddSite', addSiteBody(f));
    form.reset();
    reload();
    return `Site ${site.loginBase} added (enabled; at most ${site.maxSlices} slices and ${site.maxSlivers} slivers).`;
  });
  return (
    <section aria-labelledby="add-site-h">
      <h2 id="add-site-h">Add a site</h2>
      <p>A site an administrator adds is enabled at once; its people are added with plcctl or register themselves.</p>
      <form onSubmit={onSubmit}>
        <Field label="Login base" name="loginBase" required pattern="[a-z][a-z0-9]{1,19}" maxLength="20"
          hint="2–20 lower-case letters and digits, starting with a letter; every slice name of the site starts with it." />
        <Field label="Site name" name="name" required />
        <Field label="Web site URL" name="url" type="url" placeholder="https://www.example.edu/" />
        <Field label="Max slices" name="maxSlices" type="number" min="0" step="1" hint="Empty: PLC's default." />
        <Field label="Max slivers" name="maxSlivers" type="number" min="0" step="1" hint="Empty: PLC's default." />
        <Submit action={action}>Add site</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}
