// My account: SSH keys and API tokens.
import { useState } from 'preact/hooks';
import { admin, auth } from '../api.js';
import { ConfirmButton, ErrorMessage, Field, Loading, Outcome, Submit, Table, submitWith, useAction, useLoad } from '../components.jsx';
import { formatRelative, formatTime, fromLocalInput } from '../format.js';
import { useSession } from '../session.js';

export function AccountPage() {
  return (
    <section>
      <h1 tabindex="-1">My account</h1>
      <SshKeys />
      <ApiTokens />
    </section>
  );
}

function keyComment(key) {
  const parts = (key || '').trim().split(/\s+/);
  return parts.length > 2 ? parts.slice(2).join(' ') : '';
}

function SshKeys() {
  const { who } = useSession();
  const keys = useLoad(() => admin('GetKeys', {}), []);
  const add = useAction();
  const remove = useAction();
  const onAdd = submitWith(add, async (f, form) => {
    const key = await admin('AddPersonKey', { email: who.email, key: f.get('key').toString().trim() });
    form.reset();
    keys.reload();
    return `Key ${key.fingerprint} added.`;
  });
  const onDelete = (k) =>
    remove.run(async () => {
      await admin('DeleteKey', { keyId: k.keyId });
      keys.reload();
      return `Key ${k.fingerprint} deleted.`;
    });
  return (
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">SSH keys</h2>
      <p>These keys let you log into your slices' slivers (ssh &lt;slice&gt;@&lt;node&gt;).</p>
      <Loading load={keys}>
        {(data) => (
          <Table
            caption="My SSH keys"
            columns={['Fingerprint', 'Type', 'Comment', 'Added', 'Actions']}
            empty="no keys yet."
            rows={(data.keys || []).map((k) => ({
              key: k.keyId,
              cells: [
                <code>{k.fingerprint}</code>,
                k.keyType,
                keyComment(k.key),
                formatTime(k.createdAt),
                <ConfirmButton label="Delete" question={`Delete key ${k.fingerprint}?`} confirmLabel="Yes, delete"
                  onConfirm={() => onDelete(k)} />,
              ],
            }))}
          />
        )}
      </Loading>
      <Outcome action={remove} />
      <form onSubmit={onAdd}>
        <Field label="Public key (OpenSSH format)" name="key" textarea rows="3" required
          hint="The one line of your ~/.ssh/id_ed25519.pub (or another .pub file)." />
        <Submit action={add}>Add key</Submit>
      </form>
      <Outcome action={add} />
    </section>
  );
}

function ApiTokens() {
  const tokens = useLoad(() => auth('ListApiTokens', {}), []);
  const create = useAction();
  const revoke = useAction();
  const [created, setCreated] = useState(null);
  const onCreate = submitWith(create, async (f, form) => {
    setCreated(null);
    const response = await auth('CreateApiToken', {
      description: f.get('description').toString(),
      expiresAt: String(fromLocalInput(f.get('expiresAt').toString())),
    });
    setCreated(response);
    form.reset();
    tokens.reload();
  });
  const onRevoke = (t) =>
    revoke.run(async () => {
      await auth('RevokeApiToken', { id: t.id });
      tokens.reload();
      return `Token "${t.description}" revoked.`;
    });
  return (
    <section aria-labelledby="tokens-h">
      <h2 id="tokens-h">API tokens</h2>
      <p>Long-lived tokens for scripts and plcctl. A token is shown once, when it is created; PLC keeps only its hash.</p>
      <Loading load={tokens}>
        {(data) => (
          <Table
            caption="My API tokens"
            columns={['Description', 'Created', 'Expires', 'Actions']}
            empty="no API tokens."
            rows={(data.tokens || []).map((t) => ({
              key: t.id,
              cells: [
                t.description || `(token ${t.id})`,
                formatTime(t.createdAt),
                `${formatTime(t.expiresAt)} (${formatRelative(t.expiresAt)})`,
                <ConfirmButton label="Revoke" question={`Revoke token "${t.description}"?`} confirmLabel="Yes, revoke"
                  onConfirm={() => onRevoke(t)} />,
              ],
            }))}
          />
        )}
      </Loading>
      <Outcome action={revoke} />
      <form onSubmit={onCreate}>
        <Field label="Token description" name="description" required hint="What the token is for, e.g. 'laptop plcctl'." />
        <Field label="Token expires (your local time; empty = the server's default, one year)" name="expiresAt" type="datetime-local" />
        <Submit action={create}>Create token</Submit>
      </form>
      <ErrorMessage error={create.error} />
      {created && <NewToken created={created} />}
    </section>
  );
}

function NewToken({ created }) {
  return (
    <div role="status" class="new-token">
      <p>
        Token created, expiring {formatTime(created.info && created.info.expiresAt)}. Copy it now: it is not shown again.
      </p>
      <Field label="New API token" value={created.token} readonly class="token" onFocus={(e) => e.currentTarget.select()} />
    </div>
  );
}
