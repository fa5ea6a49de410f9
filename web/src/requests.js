// Request bodies of the anonymous "join" calls, built in one place so that a
// change of their layout in proto/plc.proto is a change of these two functions.
// `f` is the submitted form's FormData.

// Admin.RequestSite: a site asks to join; it waits, pending, for an admin.
export function requestSiteBody(f) {
  const text = (name) => (f.get(name) || '').toString().trim();
  return {
    loginBase: text('loginBase'),
    name: text('name'),
    url: text('url'),
    piEmail: text('piEmail'),
    piFirstName: text('piFirstName'),
    piLastName: text('piLastName'),
    piPassword: (f.get('piPassword') || '').toString(),
    techContactName: text('techContactName'),
    techContactEmail: text('techContactEmail'),
  };
}

// Admin.RegisterPerson: a person asks for an account at a site; it is created
// disabled until a PI of that site enables it.
export function registerPersonBody(f) {
  const text = (name) => (f.get(name) || '').toString().trim();
  return {
    email: text('email'),
    firstName: text('firstName'),
    lastName: text('lastName'),
    password: (f.get('password') || '').toString(),
    loginBase: text('loginBase'),
  };
}
