// Who is logged in, as WhoAmI told us, and what their roles let them see.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export const SessionContext = createContext(null);

// { who, refresh(), logout() }; who is null when nobody is logged in.
export function useSession() {
  return useContext(SessionContext);
}

export function isAdmin(who) {
  return !!who && (who.roles || []).some((r) => r.role === 'admin');
}

// The sites where `who` holds `role` ("pi", "tech", "user").
export function sitesWithRole(who, role) {
  if (!who) return [];
  return [...new Set((who.roles || []).filter((r) => r.role === role).map((r) => r.loginBase))];
}

export function isPi(who) {
  return isAdmin(who) || sitesWithRole(who, 'pi').length > 0;
}

export function navigate(route) {
  const hash = `#/${route}`;
  if (location.hash !== hash) location.hash = hash;
}
