// The portal's shell: the session (who is logged in), hash routes
// (#/slices, #/slice/<name>, #/admin/events, ...) and the navigation.
import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { auth, getToken, setToken, setUnauthenticatedHandler } from './api.js';
import { ErrorMessage } from './components.jsx';
import { AccountPage } from './pages/account.jsx';
import { AdminPage } from './pages/admin.jsx';
import { RegisterPage, RequestSitePage } from './pages/join.jsx';
import { LoginPage, WhoAmIPage } from './pages/login.jsx';
import { PiPage } from './pages/pi.jsx';
import { SlicePage } from './pages/slice.jsx';
import { NewSlicePage, SlicesPage } from './pages/slices.jsx';
import { SessionContext, isAdmin, isPi, navigate } from './session.js';

function currentRoute() {
  const path = location.hash.replace(/^#\/?/, '');
  return path.split('/').map((p) => decodeURIComponent(p));
}

function useRoute() {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

// Pages anyone may see without logging in.
const kPublic = new Set(['login', 'join']);

function page(route, who) {
  const [first, second] = route;
  if (first === 'join') return second === 'site' ? <RequestSitePage /> : <RegisterPage />;
  if (!who) return <LoginPage />;
  switch (first) {
    case 'whoami':
      return <WhoAmIPage />;
    case 'account':
      return <AccountPage />;
    case 'pi':
      return <PiPage />;
    case 'slices':
      return second === 'new' ? <NewSlicePage /> : <SlicesPage />;
    case 'slice':
      return <SlicePage key={second} name={second} />;
    case 'admin':
      return <AdminPage page={second || 'sites'} />;
    default:
      return <SlicesPage />;
  }
}

function Nav({ who, route, onLogout }) {
  const here = route.join('/');
  // A link is current on its own page and below it (Admin on every admin/... page).
  const link = (href, label, ...areas) => (
    <li>
      <a href={`#/${href}`} aria-current={[href, ...areas].some((a) => here === a || here.startsWith(`${a}/`)) ? 'page' : undefined}>
        {label}
      </a>
    </li>
  );
  return (
    <nav aria-label="Main">
      <ul>
        {who ? (
          <>
            {link('slices', 'Slices', 'slice')}
            {link('account', 'My account')}
            {link('whoami', 'Who am I')}
            {isPi(who) && link('pi', 'People (PI)')}
            {isAdmin(who) && link('admin/sites', 'Admin', 'admin')}
            <li>
              <button type="button" class="link" onClick={onLogout}>
                Log out {who.email}
              </button>
            </li>
          </>
        ) : (
          <>
            {link('login', 'Log in')}
            {link('join/site', 'Request a site')}
            {link('join/user', 'Register')}
          </>
        )}
      </ul>
    </nav>
  );
}

function App() {
  const route = useRoute();
  const [who, setWho] = useState(null);
  const [ready, setReady] = useState(false);
  const [error, setError] = useState(null);
  const main = useRef(null);

  const refresh = useCallback(async () => {
    if (!getToken()) {
      setWho(null);
      return null;
    }
    const me = await auth('WhoAmI', {});
    setWho(me);
    return me;
  }, []);

  const logout = useCallback(async () => {
    try {
      await auth('Logout', {});
    } catch {
      // The session may already be gone; forgetting the token is what matters.
    }
    setToken('');
    setWho(null);
    navigate('login');
  }, []);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setToken('');
      setWho(null);
    });
    refresh()
      .catch((e) => {
        setToken('');
        setError(e);
      })
      .finally(() => setReady(true));
  }, []);

  // After logging in on the login page, go on to the slices.
  useEffect(() => {
    if (who && (route[0] === 'login' || route[0] === '')) navigate('slices');
  }, [who, route[0]]);

  // Move focus to the new page's heading, so keyboard and screen reader users
  // start reading where the page changed.
  useEffect(() => {
    const h1 = main.current && main.current.querySelector('h1');
    if (h1 && document.activeElement !== h1 && ready) h1.focus({ preventScroll: true });
  }, [route.join('/'), ready, !!who]);

  useEffect(() => {
    const h1 = main.current && main.current.querySelector('h1');
    document.title = `${h1 ? h1.textContent : 'PlanetLab'} — PlanetLab portal`;
  });

  const session = { who, refresh, logout };
  return (
    <SessionContext.Provider value={session}>
      <header>
        <a href="#main" class="skip">
          Skip to content
        </a>
        <p class="brand">PlanetLab</p>
        <Nav who={who} route={route} onLogout={logout} />
      </header>
      <main id="main" ref={main}>
        {error && <ErrorMessage error={error} />}
        {ready ? page(route, who) : <p aria-live="polite">Loading…</p>}
      </main>
    </SessionContext.Provider>
  );
}

if (!kPublic.has(currentRoute()[0]) && !getToken() && !location.hash) navigate('login');
render(<App />, document.getElementById('app'));
