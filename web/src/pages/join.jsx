// Anonymous forms: a site asks to join PlanetLab; a person asks for an account
// at a site. Both wait for approval (an admin; the site's PI).
import { admin } from '../api.js';
import { Field, Outcome, Submit, submitWith, useAction } from '../components.jsx';
import { registerPersonBody, requestSiteBody } from '../requests.js';

export function RequestSitePage() {
  const action = useAction();
  const onSubmit = submitWith(action, async (f, form) => {
    const body = requestSiteBody(f);
    await admin('RequestSite', body, { anonymous: true });
    form.reset();
    return `Site "${body.loginBase}" requested. It waits for a PlanetLab administrator's approval; ` +
      `the PI account (${body.piEmail}) can log in once the site is approved.`;
  });
  return (
    <section>
      <h1 tabindex="-1">Request a site</h1>
      <p>
        A site is an institution that hosts nodes and whose researchers run slices. The request waits for
        approval by a PlanetLab administrator; until then the site and its PI account stay disabled.
      </p>
      <form onSubmit={onSubmit}>
        <fieldset>
          <legend>The site</legend>
          <Field label="Login base" name="loginBase" required pattern="[a-z][a-z0-9]{1,19}"
            hint="2–20 lowercase letters and digits, starting with a letter: the prefix of the site's slice names." />
          <Field label="Site name" name="name" required />
          <Field label="Web site URL" name="url" type="url" required placeholder="https://" />
        </fieldset>
        <fieldset>
          <legend>Principal investigator (PI)</legend>
          <Field label="PI first name" name="piFirstName" required />
          <Field label="PI last name" name="piLastName" required />
          <Field label="PI email" name="piEmail" type="email" required autocomplete="email" />
          <Field label="PI password" name="piPassword" type="password" required minlength="8"
            autocomplete="new-password" hint="At least 8 characters." />
        </fieldset>
        <fieldset>
          <legend>Technical contact</legend>
          <Field label="Technical contact name" name="techContactName" />
          <Field label="Technical contact email" name="techContactEmail" type="email" />
        </fieldset>
        <Submit action={action}>Request the site</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}

export function RegisterPage() {
  const action = useAction();
  const onSubmit = submitWith(action, async (f, form) => {
    const body = registerPersonBody(f);
    await admin('RegisterPerson', body, { anonymous: true });
    form.reset();
    return `Account ${body.email} registered at site "${body.loginBase}". It waits for approval: ` +
      `a PI of that site must enable it before you can log in.`;
  });
  return (
    <section>
      <h1 tabindex="-1">Register as a user at a site</h1>
      <p>Your account is created disabled and waits until a PI of the site enables it.</p>
      <form onSubmit={onSubmit}>
        <Field label="Site login base" name="loginBase" required pattern="[a-z][a-z0-9]{1,19}"
          hint="The site's short name, as in its slice names (e.g. princeton)." />
        <Field label="First name" name="firstName" required />
        <Field label="Last name" name="lastName" required />
        <Field label="Email" name="email" type="email" required autocomplete="email" />
        <Field label="Password" name="password" type="password" required minlength="8"
          autocomplete="new-password" hint="At least 8 characters." />
        <Submit action={action}>Register</Submit>
      </form>
      <Outcome action={action} />
    </section>
  );
}
