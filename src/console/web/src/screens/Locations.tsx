import { useQuery } from '@tanstack/react-query';
import { ago, api, fmtTime } from '../api';
import { Failed, Loading, Section, Status } from '../ui';

interface Installation {
  id: string;
  kind: string;
  companyId: string;
  locationId: string | null;
  tokenSource: string;
  status: string;
  statusReason: string | null;
  expiresAt: string | null;
  refreshedAt: string | null;
  installedAt: string;
  scopes: { granted: string[]; needed: string[]; missing: string[] };
}
interface Activity {
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  lastFailure: string | null;
  outbound24h: number;
  failed24h: number;
}
interface LocationRow {
  locationId: string;
  installation: Installation | null;
  channel: { kind: string; enabled: boolean } | null;
  activity: Activity | null;
}

export function Locations() {
  const q = useQuery({
    queryKey: ['locations'],
    queryFn: () => api<{ locations: LocationRow[] }>('/admin/api/locations'),
  });
  if (q.isPending) return <Loading what="locations" />;
  if (q.isError) return <Failed error={q.error} />;
  const rows = q.data.locations;
  return (
    <>
      <h1>Locations</h1>
      <Section title={`${rows.length} location(s)`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Location</th>
              <th scope="col">Installation</th>
              <th scope="col">Token expires</th>
              <th scope="col">Scopes</th>
              <th scope="col">Channel</th>
              <th scope="col">Last success</th>
              <th scope="col">Last failure</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((l) => (
              <tr key={l.locationId}>
                <td>
                  <a href={`#/locations/${encodeURIComponent(l.locationId)}`}>{l.locationId}</a>
                </td>
                <td>
                  <Status value={l.installation?.status ?? 'not installed'} />
                </td>
                <td>{ago(l.installation?.expiresAt)}</td>
                <td>
                  {l.installation ? (
                    l.installation.scopes.missing.length ? (
                      <Status value={`${l.installation.scopes.missing.length} missing`} />
                    ) : (
                      <Status value="ok" />
                    )
                  ) : (
                    '—'
                  )}
                </td>
                <td>{l.channel ? `${l.channel.kind}${l.channel.enabled ? '' : ' (disabled)'}` : '—'}</td>
                <td>{ago(l.activity?.lastSuccessAt)}</td>
                <td>{l.activity?.lastFailureAt ? ago(l.activity.lastFailureAt) : 'none'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </>
  );
}

interface Detail {
  locationId: string;
  installations: Installation[];
  conversationProvider: { configured: string | null; channelOverride: string | null };
  channel: {
    kind: string;
    enabled: boolean;
    config: Record<string, unknown>;
    inboundUrl: string;
    updatedAt: string;
  } | null;
  activity: Activity | null;
  sync: Array<{
    stream: string;
    lastRunAt: string | null;
    checkpointAt: string;
    lastCaughtUp: number;
    lastError: string | null;
  }>;
  recentErrors: Array<{ messageId: string; state: string; at: string; error: string }>;
  deadJobs: Array<{ id: number; kind: string; lastError: string | null }>;
  deadWebhooks: Array<{ id: number; type: string | null; reason: string | null }>;
}

export function LocationDetail({ id }: { id: string }) {
  const q = useQuery({
    queryKey: ['location', id],
    queryFn: () => api<Detail>(`/admin/api/locations/${encodeURIComponent(id)}`),
  });
  if (q.isPending) return <Loading what={`location ${id}`} />;
  if (q.isError) return <Failed error={q.error} />;
  const d = q.data;
  return (
    <>
      <h1>Location {d.locationId}</h1>
      <div className="grid">
        {d.installations.map((i) => (
          <Section key={i.id} title={`Installation (${i.kind})`}>
            <dl className="facts">
              <dt>Status</dt>
              <dd>
                <Status value={i.status} /> {i.statusReason}
              </dd>
              <dt>Agency</dt>
              <dd>{i.companyId}</dd>
              <dt>Token source</dt>
              <dd>{i.tokenSource}</dd>
              <dt>Token expires</dt>
              <dd>
                {fmtTime(i.expiresAt)} ({ago(i.expiresAt)})
              </dd>
              <dt>Last refresh</dt>
              <dd>{i.refreshedAt ? `${fmtTime(i.refreshedAt)} (${ago(i.refreshedAt)})` : 'never'}</dd>
              <dt>Installed</dt>
              <dd>{fmtTime(i.installedAt)}</dd>
            </dl>
            <h3>Scopes</h3>
            <table aria-label="Scopes granted and needed">
              <thead>
                <tr>
                  <th scope="col">Scope</th>
                  <th scope="col">Needed</th>
                  <th scope="col">Granted</th>
                </tr>
              </thead>
              <tbody>
                {Array.from(new Set([...i.scopes.needed, ...i.scopes.granted]))
                  .sort()
                  .map((s) => (
                    <tr key={s}>
                      <td>
                        <code>{s}</code>
                      </td>
                      <td>{i.scopes.needed.includes(s) ? 'yes' : 'no'}</td>
                      <td>
                        <Status value={i.scopes.granted.includes(s) ? 'granted' : 'missing'} />
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </Section>
        ))}
        {!d.installations.length && (
          <Section title="Installation">
            <p>
              <Status value="not installed" />
            </p>
          </Section>
        )}
        <Section title="Channel">
          {d.channel ? (
            <dl className="facts">
              <dt>Kind</dt>
              <dd>{d.channel.kind}</dd>
              <dt>Enabled</dt>
              <dd>
                <Status value={d.channel.enabled ? 'yes' : 'no'} />
              </dd>
              <dt>Conversation provider</dt>
              <dd>{d.conversationProvider.channelOverride ?? d.conversationProvider.configured ?? 'not configured'}</dd>
              <dt>Default channel</dt>
              <dd className="muted">
                GHL offers no API to make a provider the location’s default (highlevel-api-docs #238, #307): choose it
                in the sub-account’s conversation-provider settings.
              </dd>
              <dt>Last success</dt>
              <dd>
                {d.activity?.lastSuccessAt
                  ? `${fmtTime(d.activity.lastSuccessAt)} (${ago(d.activity.lastSuccessAt)})`
                  : 'never'}
              </dd>
              <dt>Last failure</dt>
              <dd>
                {d.activity?.lastFailureAt
                  ? `${fmtTime(d.activity.lastFailureAt)}: ${d.activity.lastFailure ?? ''}`
                  : 'none'}
              </dd>
              <dt>Last 24 h</dt>
              <dd>
                {d.activity?.outbound24h ?? 0} outbound, {d.activity?.failed24h ?? 0} failed
              </dd>
              <dt>Inbound URL</dt>
              <dd>
                <code>{d.channel.inboundUrl}</code>
              </dd>
            </dl>
          ) : (
            <p>No channel configured (Settings → Channels).</p>
          )}
        </Section>
        <Section title="Sync (catch-up)">
          {d.sync.length ? (
            <table>
              <thead>
                <tr>
                  <th scope="col">Stream</th>
                  <th scope="col">Last run</th>
                  <th scope="col">Checkpoint</th>
                  <th scope="col">Caught up</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {d.sync.map((s) => (
                  <tr key={s.stream}>
                    <td>{s.stream}</td>
                    <td>{ago(s.lastRunAt)}</td>
                    <td>{fmtTime(s.checkpointAt)}</td>
                    <td>{s.lastCaughtUp}</td>
                    <td className="error">{s.lastError ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="muted">No catch-up run yet.</p>
          )}
        </Section>
        <Section title="Recent errors">
          {d.recentErrors.length || d.deadJobs.length || d.deadWebhooks.length ? (
            <ul className="errors">
              {d.recentErrors.map((e) => (
                <li key={e.messageId}>
                  <a href={`#/trace?id=${encodeURIComponent(e.messageId)}`}>{e.messageId}</a> <Status value={e.state} />{' '}
                  {fmtTime(e.at)}: {e.error}
                </li>
              ))}
              {d.deadJobs.map((j) => (
                <li key={`j${j.id}`}>
                  dead job {j.id} ({j.kind}): {j.lastError}
                </li>
              ))}
              {d.deadWebhooks.map((w) => (
                <li key={`w${w.id}`}>
                  dead webhook {w.id} ({w.type}): {w.reason}
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">No errors.</p>
          )}
        </Section>
      </div>
    </>
  );
}
