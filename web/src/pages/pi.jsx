// A PI's people: accounts waiting at my sites (enable them), and the roles of
// everyone at my sites (grant pi, tech or user).
import { admin } from '../api.js';
import { Field, Loading, Outcome, Submit, Table, submitWith, useAction, useLoad } from '../components.jsx';
import { formatTime } from '../format.js';
import { isAdmin, sitesWithRole, useSession } from '../session.js';

export function PiPage() {
  const { who } = useSession();
  const sites = sitesWithRole(who, 'pi');
  return (
    <section>
      <h1 tabindex="-1">People at my sites</h1>
      {!sites.length && (
        <p>
          You are PI of no site.{isAdmin(who) ? ' Sites waiting for approval are on Admin → Sites.' : ''}
        </p>
      )}
      {isAdmin(who) && <WaitingEverywhere />}
      {sites.map((loginBase) => (
        <SitePeople key={loginBase} loginBase={loginBase} />
      ))}
    </section>
  );
}

function rolesAt(person, loginBase) {
  return (person.roles || []).filter((r) => r.loginBase === loginBase).map((r) => r.role).sort();
}

function SitePeople({ loginBase }) {
  const people = useLoad(() => admin('GetPersons', { loginBase }), [loginBase]);
  const action = useAction();
  const enable = (p) =>
    action.run(async () => {
      await admin('UpdatePerson', { email: p.email, enabled: true });
      people.reload();
      return `${p.email} enabled.`;
    });
  const onGrant = (p) =>
    submitWith(action, async (f) => {
      const role = f.get('role').toString();
      await admin('AddRoleToPerson', { email: p.email, role, loginBase });
      people.reload();
      return `${p.email} is now ${role} at ${loginBase}.`;
    });
  const grantForm = (p) => (
    <form class="inline" onSubmit={onGrant(p)}>
      <Field label={`Role for ${p.email}`} name="role" select>
        <option value="user">user</option>
        <option value="tech">tech</option>
        <option value="pi">pi</option>
      </Field>
      <Submit action={action}>Grant role</Submit>
    </form>
  );
  const name = (p) => `${p.firstName} ${p.lastName}`.trim();
  return (
    <section aria-labelledby={`people-${loginBase}`}>
      <h2 id={`people-${loginBase}`}>Site {loginBase}</h2>
      <Outcome action={action} />
      <Loading load={people}>
        {(data) => {
          const persons = (data.persons || []).filter((p) => !Number(p.deletedAt));
          const pending = persons.filter((p) => !p.enabled);
          return (
            <>
              <Table
                caption={`Waiting for approval at ${loginBase}`}
                columns={['Email', 'Name', 'Registered', 'Actions']}
                empty="nobody is waiting."
                rows={pending.map((p) => ({
                  key: p.email,
                  cells: [
                    p.email,
                    name(p),
                    formatTime(p.createdAt),
                    <button type="button" disabled={action.busy} onClick={() => enable(p)}>
                      Enable {p.email}
                    </button>,
                  ],
                }))}
              />
              <Table
                caption={`Everyone at ${loginBase}`}
                columns={['Email', 'Name', 'Enabled', 'Roles here', 'Grant a role']}
                rows={persons.map((p) => ({
                  key: p.email,
                  cells: [p.email, name(p), p.enabled ? 'yes' : 'no (waiting)', rolesAt(p, loginBase).join(', ') || 'none', grantForm(p)],
                }))}
              />
            </>
          );
        }}
      </Loading>
    </section>
  );
}

// An admin's view: every account waiting, at any site (GetPersons pendingOnly).
function WaitingEverywhere() {
  const people = useLoad(() => admin('GetPersons', { pendingOnly: true }), []);
  const action = useAction();
  const enable = (p) =>
    action.run(async () => {
      await admin('UpdatePerson', { email: p.email, enabled: true });
      people.reload();
      return `${p.email} enabled.`;
    });
  return (
    <section aria-labelledby="people-all">
      <h2 id="people-all">Every site (admin)</h2>
      <Outcome action={action} />
      <Loading load={people}>
        {(data) => (
          <Table
            caption="Accounts waiting for approval at any site"
            columns={['Email', 'Name', 'Sites', 'Registered', 'Actions']}
            empty="nobody is waiting."
            rows={(data.persons || []).map((p) => ({
              key: p.email,
              cells: [
                p.email,
                `${p.firstName} ${p.lastName}`.trim(),
                (p.sites || []).join(', '),
                formatTime(p.createdAt),
                <button type="button" disabled={action.busy} onClick={() => enable(p)}>
                  Enable {p.email}
                </button>,
              ],
            }))}
          />
        )}
      </Loading>
    </section>
  );
}
