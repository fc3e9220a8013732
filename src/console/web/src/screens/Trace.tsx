import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, fmtTime } from '../api';
import { Failed, Loading, Section, Status } from '../ui';

interface Match {
  direction: 'outbound' | 'inbound';
  messageId: string | null;
  locationId: string;
  contactId: string | null;
  state: string;
  receivedAt: string;
  type?: string;
  address?: string;
}
interface Step {
  step: string;
  at: string | null;
  detail: string;
  error: string | null;
  eventId?: number;
  replayable?: boolean;
}
interface TraceData {
  messageId: string;
  message: { locationId: string; contactId: string; type: string; state: string; attempts: number } | null;
  steps: Step[];
  jobs: Array<{
    id: number;
    kind: string;
    state: string;
    attempts: number;
    maxAttempts: number;
    lastError: string | null;
  }>;
}

export function Trace({ q, id }: { q: string; id: string | null }) {
  const [term, setTerm] = useState(q);
  const search = useQuery({
    queryKey: ['search', q],
    queryFn: () => api<{ matches: Match[] }>(`/admin/api/trace?q=${encodeURIComponent(q)}`),
    enabled: q.length > 0,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    window.location.hash = `#/trace?q=${encodeURIComponent(term.trim())}`;
  };
  const matches = search.data?.matches ?? [];
  const only = !id && matches.length === 1 && matches[0]!.direction === 'outbound' ? matches[0]!.messageId : null;
  const shown = id ?? only;
  return (
    <>
      <h1>Message trace</h1>
      <form className="search" role="search" onSubmit={submit}>
        <label htmlFor="trace-q">GHL message id, contact id, phone or e-mail</label>
        <input id="trace-q" type="search" value={term} onChange={(e) => setTerm(e.target.value)} required />
        <button type="submit">Search</button>
      </form>
      {search.isFetching && <Loading what="matches" />}
      {search.isError && <Failed error={search.error} />}
      {q && search.data && !matches.length && <p>No message matches “{q}”.</p>}
      {matches.length > 1 || (matches.length === 1 && !only) ? (
        <Section title={`${matches.length} match(es)`}>
          <table>
            <thead>
              <tr>
                <th scope="col">Direction</th>
                <th scope="col">Message</th>
                <th scope="col">Location</th>
                <th scope="col">Contact / address</th>
                <th scope="col">State</th>
                <th scope="col">Received</th>
              </tr>
            </thead>
            <tbody>
              {matches.map((m, i) => (
                <tr key={i}>
                  <td>{m.direction}</td>
                  <td>
                    {m.messageId && m.direction === 'outbound' ? (
                      <a href={`#/trace?q=${encodeURIComponent(q)}&id=${encodeURIComponent(m.messageId)}`}>
                        {m.messageId}
                      </a>
                    ) : (
                      (m.messageId ?? '—')
                    )}
                  </td>
                  <td>{m.locationId}</td>
                  <td>{m.address ?? m.contactId}</td>
                  <td>
                    <Status value={m.state} />
                  </td>
                  <td>{fmtTime(m.receivedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      ) : null}
      {shown && <Timeline id={shown} />}
    </>
  );
}

function Timeline({ id }: { id: string }) {
  const qc = useQueryClient();
  const t = useQuery({
    queryKey: ['trace', id],
    queryFn: () => api<TraceData>(`/admin/api/trace/${encodeURIComponent(id)}`),
    refetchInterval: 3_000,
  });
  const retry = useMutation({
    mutationFn: (ids: number[]) => api('/admin/api/jobs/retry', { method: 'POST', body: { ids } }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['trace', id] }),
  });
  const replay = useMutation({
    mutationFn: (ids: number[]) => api('/admin/webhooks/replay', { method: 'POST', body: { ids } }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['trace', id] }),
  });
  if (t.isPending) return <Loading what={`message ${id}`} />;
  if (t.isError) return <Failed error={t.error} />;
  const d = t.data;
  return (
    <Section title={`Message ${d.messageId}`}>
      {d.message && (
        <p>
          {d.message.type} to contact {d.message.contactId} in{' '}
          <a href={`#/locations/${encodeURIComponent(d.message.locationId)}`}>{d.message.locationId}</a>:{' '}
          <Status value={d.message.state} />
        </p>
      )}
      <ol className="timeline" aria-label="Timeline">
        {d.steps.map((s, i) => (
          <li key={i} className={s.error ? 'step bad' : 'step'} data-step={s.step}>
            <span className="step-name">{s.step}</span> <time>{s.at ? fmtTime(s.at) : 'pending'}</time>
            <div>{s.detail}</div>
            {s.error && <div className="error">{s.error}</div>}
            {s.replayable && s.eventId !== undefined && (
              <button type="button" onClick={() => replay.mutate([s.eventId!])}>
                Replay webhook {s.eventId}
              </button>
            )}
          </li>
        ))}
      </ol>
      {d.jobs.length > 0 && (
        <>
          <h3>Jobs waiting for this message</h3>
          <table>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">State</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last error</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {d.jobs.map((j) => (
                <tr key={j.id}>
                  <td>{j.id}</td>
                  <td>{j.kind}</td>
                  <td>
                    <Status value={j.state} />
                  </td>
                  <td>
                    {j.attempts}/{j.maxAttempts}
                  </td>
                  <td className="error">{j.lastError}</td>
                  <td>
                    {j.state === 'dead' && (
                      <button type="button" onClick={() => retry.mutate([j.id])}>
                        Retry job {j.id}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Section>
  );
}
