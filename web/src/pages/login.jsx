import { auth, setToken } from '../api.js';
import { Field, Outcome, Submit, Table, submitWith, useAction } from '../components.jsx';
import { formatRelative, formatTime } from '../format.js';
import { useSession } from '../session.js';

export function LoginPage() {
  const session = useSession();
  const action = useAction();
  const onSubmit = submitWith(action, async (f) => {
    const response = await auth('Login', { email: f.get('email'), password: f.get('password') }, { anonymous: true });
    setToken(response.token);
    await session.refresh();
  });
  return (
    <section>
      <h1 tabindex="-1">Log in to PlanetLab</h1>
      <form onSubmit={onSubmit}>
        <Field label="Email" name="email" type="email" autocomplete="username" required />
        <Field label="Password" name="password" type="password" autocomplete="current-password" required />
        <Submit action={action}>Log in</Submit>
      </form>
      <Outcome action={action} />
      <p>
        No account yet? <a href="#/join/user">Register as a user at a site</a>, or{' '}
        <a href="#/join/site">request a new site</a>.
      </p>
    </section>
  );
}

export function WhoAmIPage() {
  const { who } = useSession();
  const roles = (who.roles || []).map((r, i) => ({ key: i, cells: [r.role, r.loginBase || '(all sites)'] }));
  return (
    <section>
      <h1 tabindex="-1">Who am I</h1>
      <dl class="facts">
        <dt>Email</dt>
        <dd data-testid="who-email">{who.email || who.hostname}</dd>
        <dt>Kind</dt>
        <dd>{who.kind}</dd>
        <dt>Sites</dt>
        <dd>{(who.sites || []).join(', ') || 'none'}</dd>
        <dt>Session expires</dt>
        <dd>
          {formatTime(who.tokenExpiresAt)} ({formatRelative(who.tokenExpiresAt)})
        </dd>
      </dl>
      <Table caption="Roles" columns={['Role', 'Site']} rows={roles} empty="no roles yet (an account waiting for a PI has none)." />
    </section>
  );
}
