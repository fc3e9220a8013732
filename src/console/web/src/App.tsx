import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, setCsrf } from './api';
import { Overview } from './screens/Overview';
import { Locations, LocationDetail } from './screens/Locations';
import { Trace } from './screens/Trace';
import { DeadJobs } from './screens/DeadJobs';
import { Webhooks } from './screens/Webhooks';
import { Settings } from './screens/Settings';
import { CallPayloads } from './screens/CallPayloads';
import { Pipelines } from './screens/Pipelines';

interface Session {
  authenticatedBy: 'session' | 'bearer';
  csrfToken: string | null;
  expiresAt: number | null;
}

/** Hash routes (#/trace?q=…): the bridge serves one page, so every screen is a hash. */
function useRoute(): [string, URLSearchParams] {
  const read = () => {
    const h = window.location.hash.replace(/^#/, '') || '/';
    const [path = '/', query = ''] = h.split('?');
    return [path, new URLSearchParams(query)] as [string, URLSearchParams];
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

const NAV: Array<[string, string]> = [
  ['/', 'Overview'],
  ['/locations', 'Locations'],
  ['/trace', 'Message trace'],
  ['/jobs', 'Dead jobs'],
  ['/webhooks', 'Webhook events'],
  ['/calls', 'Call payloads'],
  ['/pipelines', 'Triggers & deals'],
  ['/settings', 'Settings'],
];

function Login({ onDone }: { onDone: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api<{ csrfToken: string }>('/admin/login', { method: 'POST', body: { key } });
      setCsrf(r.csrfToken);
      setKey('');
      onDone();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="login">
      <h1>ghl-bridge console</h1>
      <form onSubmit={submit} aria-describedby="login-help">
        <label htmlFor="admin-key">Admin key</label>
        <input
          id="admin-key"
          type="password"
          autoComplete="current-password"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          required
        />
        <p id="login-help" className="muted">
          The bridge’s ADMIN_API_KEY (sandbox: the file DATA_DIR/sandbox-admin-key). It is exchanged for a session
          cookie and not kept by the page.
        </p>
        <button type="submit" disabled={busy}>
          Log in
        </button>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

export function App() {
  const qc = useQueryClient();
  const [path, params] = useRoute();
  const session = useQuery({
    queryKey: ['session'],
    queryFn: async () => {
      const s = await api<Session>('/admin/api/session');
      setCsrf(s.csrfToken);
      return s;
    },
  });
  if (session.isPending) return <p className="muted">Loading…</p>;
  if (session.isError) {
    if (session.error instanceof ApiError && session.error.status === 401)
      return <Login onDone={() => void qc.invalidateQueries()} />;
    return (
      <p role="alert" className="error">
        {String(session.error.message)}
      </p>
    );
  }
  const logout = async () => {
    await api('/admin/logout', { method: 'POST' });
    setCsrf(null);
    qc.removeQueries({ predicate: (q) => q.queryKey[0] !== 'session' });
    await qc.resetQueries({ queryKey: ['session'] });
  };
  let screen;
  const loc = /^\/locations\/([^/]+)$/.exec(path);
  if (loc) screen = <LocationDetail id={decodeURIComponent(loc[1]!)} />;
  else if (path === '/locations') screen = <Locations />;
  else if (path === '/trace') screen = <Trace q={params.get('q') ?? ''} id={params.get('id')} />;
  else if (path === '/jobs') screen = <DeadJobs />;
  else if (path === '/webhooks') screen = <Webhooks />;
  else if (path === '/pipelines') screen = <Pipelines />;
  else if (path === '/settings') screen = <Settings />;
  else if (path === '/calls') screen = <CallPayloads />;
  else screen = <Overview />;
  const active = loc ? '/locations' : path;
  return (
    <>
      <header className="top">
        <span className="brand">ghl-bridge</span>
        <nav aria-label="Screens">
          {NAV.map(([to, label]) => (
            <a key={to} href={`#${to}`} aria-current={active === to ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button type="button" className="ghost" onClick={() => void logout()}>
          Log out
        </button>
      </header>
      <main>{screen}</main>
    </>
  );
}
