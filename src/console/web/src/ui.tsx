import type { ReactNode } from 'react';

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card" aria-label={title}>
      <div className="card-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

export function Status({ value }: { value: string | null | undefined }) {
  const v = value ?? 'none';
  const tone = /^(active|done|dispatched|sent|delivered|read|ok|yes|current|granted|success)$/.test(v)
    ? 'ok'
    : /dead|failed|reauth|uninstalled|rejected|missing|expired|^no$|not installed/.test(v)
      ? 'bad'
      : 'neutral';
  return <span className={`pill ${tone}`}>{v}</span>;
}

export function Loading({ what }: { what: string }) {
  return <p className="muted">Loading {what}…</p>;
}

export function Failed({ error }: { error: Error }) {
  return (
    <p role="alert" className="error">
      {error.message}
    </p>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}
