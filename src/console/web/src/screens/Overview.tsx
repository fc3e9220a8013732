import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api } from '../api';
import { Failed, Loading, Section, Status } from '../ui';
import { Chart } from './Chart';

export interface Sample {
  t: number;
  relayedPerMin: number;
  p50Ms: number | null;
  p99Ms: number | null;
  failures: number;
  webhooksPerMin: number;
  queue: Record<string, number>;
}
interface History {
  intervalMs: number;
  samples: Sample[];
  rateBudgets: Array<{
    resourceId: string;
    dailyUsed: number;
    dailyLimit: number;
    burstUsed: number;
    burstCap: number;
  }>;
}
interface ContactSync {
  locationId: string;
  lastSyncAt: string | null;
  status: 'success' | 'partial' | 'failed' | null;
  lastError: string | null;
  counts: Record<string, number> | null;
  pendingRecords: number;
  mappedContacts: number;
}
interface OverviewData {
  contactSync?: ContactSync[];
  mode: string;
  store: string;
  installations: { byStatus: Record<string, number>; total: number };
  provider: { deliveryUrl: string; mode: string; awaiting: number } | null;
}

/** Live samples over server-sent events, appended to the cached history. */
function useLiveSamples(): 'connecting' | 'live' | 'reconnecting' {
  const qc = useQueryClient();
  const [state, setState] = useState<'connecting' | 'live' | 'reconnecting'>('connecting');
  useEffect(() => {
    const es = new EventSource('/admin/api/stream');
    es.onopen = () => setState('live');
    es.onerror = () => setState('reconnecting');
    es.addEventListener('sample', (ev) => {
      const s = JSON.parse((ev as MessageEvent<string>).data) as Sample;
      qc.setQueryData<History>(['history'], (h) =>
        h ? { ...h, samples: [...h.samples.filter((x) => x.t !== s.t), s].slice(-360) } : h,
      );
    });
    return () => es.close();
  }, [qc]);
  return state;
}

export function Overview() {
  const history = useQuery({ queryKey: ['history'], queryFn: () => api<History>('/admin/api/history') });
  const overview = useQuery({
    queryKey: ['overview'],
    queryFn: () => api<OverviewData>('/admin/api/overview'),
    refetchInterval: 15_000,
  });
  const live = useLiveSamples();
  if (history.isPending) return <Loading what="the overview" />;
  if (history.isError) return <Failed error={history.error} />;
  const s = history.data.samples;
  const last = s[s.length - 1];
  const times = s.map((x) => x.t);
  const states = Array.from(new Set(s.flatMap((x) => Object.keys(x.queue)))).sort();
  const colors = ['#2364aa', '#3da35d', '#e3b505', '#b33f40', '#7d5ba6', '#555'];
  return (
    <>
      <h1>
        Overview <span className={`live ${live}`}>{live === 'live' ? '● live' : live}</span>
      </h1>
      <div className="tiles" aria-label="Current figures">
        <Tile label="Relayed / min" value={last?.relayedPerMin ?? 0} />
        <Tile label="Relay p50" value={last?.p50Ms ?? null} unit="ms" />
        <Tile label="Relay p99" value={last?.p99Ms ?? null} unit="ms" />
        <Tile label="Failures (last interval)" value={last?.failures ?? 0} />
        <Tile label="Webhooks / min" value={last?.webhooksPerMin ?? 0} />
        <Tile label="Dead jobs" value={last?.queue.dead ?? 0} />
        <Tile label="Installations" value={overview.data?.installations.total ?? null} />
      </div>
      <div className="grid">
        <Section title="Messages relayed per minute">
          <Chart
            title="Relayed per minute"
            unit="msg/min"
            times={times}
            series={[{ label: 'relayed', color: colors[0]!, values: s.map((x) => x.relayedPerMin) }]}
          />
        </Section>
        <Section title="Relay latency">
          <Chart
            title="Relay latency p50 and p99"
            unit="ms"
            times={times}
            series={[
              { label: 'p50', color: colors[1]!, values: s.map((x) => x.p50Ms) },
              { label: 'p99', color: colors[3]!, values: s.map((x) => x.p99Ms) },
            ]}
          />
        </Section>
        <Section title="Failures and webhook intake">
          <Chart
            title="Failures and webhooks per minute"
            unit="count"
            times={times}
            series={[
              { label: 'job failures', color: colors[3]!, values: s.map((x) => x.failures) },
              { label: 'webhooks/min', color: colors[0]!, values: s.map((x) => x.webhooksPerMin) },
            ]}
          />
        </Section>
        <Section title="Queue depth by state">
          <Chart
            title="Queue depth"
            unit="jobs"
            times={times}
            series={states.map((st, i) => ({
              label: st,
              color: colors[i % colors.length]!,
              values: s.map((x) => x.queue[st] ?? 0),
            }))}
          />
        </Section>
        <Section title="Rate-limit budget per location">
          {history.data.rateBudgets.length ? (
            <table>
              <thead>
                <tr>
                  <th scope="col">Location / company</th>
                  <th scope="col">Burst window</th>
                  <th scope="col">Daily</th>
                </tr>
              </thead>
              <tbody>
                {history.data.rateBudgets.map((b) => (
                  <tr key={b.resourceId}>
                    <td>
                      <a href={`#/locations/${encodeURIComponent(b.resourceId)}`}>{b.resourceId}</a>
                    </td>
                    <td>
                      <meter min={0} max={b.burstCap} value={b.burstUsed} aria-label={`burst used ${b.resourceId}`} />{' '}
                      {b.burstUsed}/{b.burstCap}
                    </td>
                    <td>
                      {b.dailyUsed}/{b.dailyLimit} ({((100 * b.dailyUsed) / Math.max(1, b.dailyLimit)).toFixed(1)} %)
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="muted">No GHL calls made yet.</p>
          )}
        </Section>
        <Section title="Contact sync">
          {overview.data?.contactSync?.length ? (
            <table aria-label="Contact sync by location">
              <thead>
                <tr>
                  <th scope="col">Location</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last sync</th>
                  <th scope="col">Last batch</th>
                  <th scope="col">Mapped</th>
                  <th scope="col">Last error</th>
                </tr>
              </thead>
              <tbody>
                {overview.data.contactSync.map((c) => (
                  <tr key={c.locationId}>
                    <td>
                      <a href={`#/locations/${encodeURIComponent(c.locationId)}`}>{c.locationId}</a>
                    </td>
                    <td>{c.status ? <Status value={c.status} /> : '—'}</td>
                    <td>{c.lastSyncAt ? new Date(c.lastSyncAt).toLocaleString() : '—'}</td>
                    <td>
                      {c.counts
                        ? Object.entries(c.counts)
                            .filter(([, n]) => n > 0)
                            .map(([k, n]) => `${k} ${n}`)
                            .join(', ') || '—'
                        : '—'}
                      {c.pendingRecords ? ` (${c.pendingRecords} to do)` : ''}
                    </td>
                    <td>{c.mappedContacts}</td>
                    <td>{c.lastError ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="muted">No contacts pushed yet.</p>
          )}
        </Section>
        <Section title="Bridge">
          {overview.data ? (
            <dl className="facts">
              <dt>Mode</dt>
              <dd>{overview.data.mode}</dd>
              <dt>Store</dt>
              <dd>{overview.data.store}</dd>
              <dt>Installations</dt>
              <dd>
                {Object.entries(overview.data.installations.byStatus).map(([k, v]) => (
                  <span key={k}>
                    <Status value={k} /> {v}{' '}
                  </span>
                ))}
              </dd>
              <dt>Delivery URL</dt>
              <dd>
                <code>{overview.data.provider?.deliveryUrl ?? '—'}</code>
              </dd>
              <dt>Awaiting confirmation</dt>
              <dd>{overview.data.provider?.awaiting ?? 0}</dd>
            </dl>
          ) : (
            <Loading what="bridge facts" />
          )}
        </Section>
      </div>
      <p className="muted">One sample every {history.data.intervalMs / 1000} s, the last hour kept by this replica.</p>
    </>
  );
}

function Tile({ label, value, unit }: { label: string; value: number | null; unit?: string }) {
  return (
    <div className="tile">
      <div className="tile-value">
        {value === null ? '—' : value}
        {value !== null && unit ? <small> {unit}</small> : null}
      </div>
      <div className="tile-label">{label}</div>
    </div>
  );
}
