// The slices I am a member of and those of my sites; creating one (PI).
import { slice } from '../api.js';
import { ErrorMessage, Field, Loading, Outcome, Submit, Table, submitWith, useAction, useLoad } from '../components.jsx';
import { formatRelative, formatTime, kExpiryWarningS, nowSeconds, seconds } from '../format.js';
import { isAdmin, navigate, sitesWithRole, useSession } from '../session.js';

export function sliceState(s, now = nowSeconds()) {
  if (seconds(s.deletedAt)) return 'deleted';
  if (seconds(s.expiresAt) <= now) return 'expired';
  return (s.nodes || []).length ? 'active' : 'active, no nodes';
}

// "in 5 days 3 hours" plus a WARNING when the slice expires within a week.
export function Expiry({ s }) {
  const now = nowSeconds();
  const left = seconds(s.expiresAt) - now;
  const warn = !seconds(s.deletedAt) && left > 0 && left < kExpiryWarningS;
  return (
    <span>
      {formatTime(s.expiresAt)} ({formatRelative(s.expiresAt, now)})
      {warn && (
        <strong class="warning">
          {' '}
          WARNING: expires in under 7 days; renew it.
        </strong>
      )}
    </span>
  );
}

async function loadSlices(who) {
  // Mine, then each site's where I hold a role; a site PLC will not list for me
  // is reported, not fatal.
  const byName = new Map();
  const problems = [];
  const mine = await slice('GetSlices', { member: who.email });
  for (const s of mine.slices || []) byName.set(s.name, { ...s, mine: true });
  for (const loginBase of who.sites || []) {
    try {
      const site = await slice('GetSlices', { loginBase });
      for (const s of site.slices || []) if (!byName.has(s.name)) byName.set(s.name, { ...s, mine: false });
    } catch (e) {
      problems.push(new Error(`Slices of ${loginBase}: ${e.message}`));
    }
  }
  const slices = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  return { slices, problems };
}

export function SlicesPage() {
  const { who } = useSession();
  const load = useLoad(() => loadSlices(who), [who.email]);
  const canCreate = isAdmin(who) || sitesWithRole(who, 'pi').length > 0;
  return (
    <section>
      <h1 tabindex="-1">Slices</h1>
      {canCreate && (
        <p>
          <a href="#/slices/new">Create a slice</a>
        </p>
      )}
      <Loading load={load}>
        {(data) => (
          <>
            {data.problems.map((p) => (
              <ErrorMessage error={p} />
            ))}
            <Table
              caption="My slices and my sites' slices"
              columns={['Name', 'Site', 'State', 'Nodes', 'Expires', 'Member']}
              empty="no slices."
              rows={data.slices.map((s) => ({
                key: s.name,
                cells: [
                  <a href={`#/slice/${encodeURIComponent(s.name)}`}>{s.name}</a>,
                  s.loginBase,
                  sliceState(s),
                  (s.nodes || []).length,
                  <Expiry s={s} />,
                  s.mine ? 'yes' : 'no',
                ],
              }))}
            />
          </>
        )}
      </Loading>
    </section>
  );
}

export function NewSlicePage() {
  const { who } = useSession();
  const sites = isAdmin(who) ? who.sites || [] : sitesWithRole(who, 'pi');
  const action = useAction();
  const onSubmit = submitWith(action, async (f) => {
    const site = f.get('site').toString();
    const short = f.get('shortName').toString().trim();
    const name = site ? `${site}_${short}` : short;
    const request = {
      name,
      description: f.get('description').toString(),
      url: f.get('url').toString().trim(),
      instantiation: f.get('instantiation').toString(),
    };
    const maxNodes = f.get('maxNodes').toString();
    if (maxNodes) request.maxNodes = Number(maxNodes);
    const created = await slice('AddSlice', request);
    navigate(`slice/${encodeURIComponent(created.name)}`);
  });
  return (
    <section>
      <h1 tabindex="-1">Create a slice</h1>
      <form onSubmit={onSubmit}>
        {sites.length ? (
          <Field label="Site" name="site" select required>
            {sites.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </Field>
        ) : (
          <input type="hidden" name="site" value="" />
        )}
        <Field label="Slice name (after the site prefix)" name="shortName" required pattern="[a-z0-9_]+"
          hint={sites.length ? 'The slice is named <site>_<this>, e.g. princeton_codeen.' : 'The full name, <site>_<name>.'} />
        <Field label="Description" name="description" textarea rows="3" required />
        <Field label="URL" name="url" type="url" placeholder="https://" hint="A page about the experiment." />
        <Field label="Instantiation" name="instantiation" select>
          <option value="plc-instantiated">plc-instantiated (PLC creates the slivers)</option>
          <option value="delegated">delegated (slivers are created with a ticket)</option>
        </Field>
        <Field label="Maximum nodes (empty = default)" name="maxNodes" type="number" min="1" />
        <Submit action={action}>Create slice</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}
