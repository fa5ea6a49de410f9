// Small building blocks shared by the pages: loading data, running an action
// with its error and outcome shown, labelled form fields, tables.
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';

// Loads data with `fn` (an async function) when `deps` change. `reload()` runs it again.
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { ...state, reload };
}

// An action a user starts (a form's submit, a button): `run(fn)` clears the
// previous outcome, keeps `busy` while it runs, and records its error or the
// message `fn` returns (shown as a status).
export function useAction() {
  const [state, setState] = useState({ busy: false, error: null, done: null });
  const run = useCallback(async (fn) => {
    setState({ busy: true, error: null, done: null });
    try {
      const done = await fn();
      setState({ busy: false, error: null, done: done ?? null });
      return true;
    } catch (error) {
      setState({ busy: false, error, done: null });
      return false;
    }
  }, []);
  const clear = useCallback(() => setState({ busy: false, error: null, done: null }), []);
  return { ...state, run, clear };
}

// Runs `fn(formData, form)` on submit through `action` (a useAction()).
export function submitWith(action, fn) {
  return (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    action.run(() => fn(new FormData(form), form));
  };
}

// The server's message, verbatim, where assistive technology announces it.
export function ErrorMessage({ error }) {
  if (!error) return null;
  const text = error.message || String(error);
  return (
    <p role="alert" class="error">
      {text}
    </p>
  );
}

export function StatusMessage({ children }) {
  if (children === null || children === undefined || children === false) return null;
  return (
    <p role="status" class="done">
      {children}
    </p>
  );
}

// What an action ended with: its error, or what it reported on success.
export function Outcome({ action }) {
  return (
    <>
      <ErrorMessage error={action.error} />
      <StatusMessage>{action.done}</StatusMessage>
    </>
  );
}

export function Loading({ load, children }) {
  if (load.error) return <ErrorMessage error={load.error} />;
  if (load.loading && !load.data) return <p aria-live="polite">Loading…</p>;
  return children(load.data);
}

// A labelled input: <Field label="Email" name="email" type="email" required />.
// `hint` is a short explanation tied to the input with aria-describedby.
export function Field({ label, hint, textarea, select, children, ...input }) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  let control;
  if (textarea) control = <textarea id={id} aria-describedby={hintId} {...input} />;
  else if (select) control = <select id={id} aria-describedby={hintId} {...input}>{children}</select>;
  else control = <input id={id} aria-describedby={hintId} {...input} />;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {control}
      {hint && (
        <small id={hintId} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

export function Checkbox({ label, ...input }) {
  const id = useId();
  return (
    <div class="field checkbox">
      <input id={id} type="checkbox" {...input} />
      <label for={id}>{label}</label>
    </div>
  );
}

export function Submit({ action, children }) {
  return (
    <button type="submit" disabled={action && action.busy}>
      {children}
    </button>
  );
}

// A ref whose element takes the focus when it appears and whenever `deps`
// change: the heading of a panel a button just opened, so keyboard and screen
// reader users land where the page changed.
export function useFocusOnShow(deps) {
  const ref = useRef(null);
  useEffect(() => {
    if (ref.current) ref.current.focus();
  }, deps);
  return ref;
}

// A button asking to confirm before it acts: a first press shows
// "Really …? [Yes] [No]" in place, so keyboard users meet no modal dialog.
export function ConfirmButton({ label, question, confirmLabel, onConfirm, disabled }) {
  const [asking, setAsking] = useState(false);
  const yes = useRef(null);
  // The first button is gone once pressed: focus goes to the question's answer.
  useEffect(() => {
    if (asking && yes.current) yes.current.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" class="danger" disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={question}>
      <span>{question}</span>{' '}
      <button
        type="button"
        class="danger"
        ref={yes}
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {confirmLabel || 'Yes'}
      </button>{' '}
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

// A table with a caption and column headers; `rows` are arrays of cells, the
// first cell of each row its row header.
export function Table({ caption, columns, rows, empty = 'None.', className }) {
  if (!rows.length) {
    return (
      <p class="empty">
        {caption ? `${caption}: ` : ''}
        {empty}
      </p>
    );
  }
  return (
    <div class="table-wrap">
      <table class={className}>
        {caption && <caption>{caption}</caption>}
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col">{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key} class={row.className}>
              {(row.cells || row).map((cell, i) => (i === 0 ? <th scope="row">{cell}</th> : <td>{cell}</td>))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
