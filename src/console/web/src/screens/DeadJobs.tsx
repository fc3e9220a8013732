import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, fmtTime } from '../api';
import { Failed, Json, Loading, Section } from '../ui';

interface Job {
  id: number;
  kind: string;
  state: string;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  scope: string | null;
  updatedAt: string;
}

export function DeadJobs() {
  const qc = useQueryClient();
  const [kind, setKind] = useState('');
  const [picked, setPicked] = useState<number[]>([]);
  const [viewing, setViewing] = useState<number | null>(null);
  const jobs = useQuery({
    queryKey: ['jobs', 'dead', kind],
    queryFn: () =>
      api<{ jobs: Job[]; kinds: string[] }>(
        `/admin/api/jobs?state=dead${kind ? `&kind=${encodeURIComponent(kind)}` : ''}`,
      ),
    refetchInterval: 5_000,
  });
  const payload = useQuery({
    queryKey: ['job', viewing],
    queryFn: () => api<Job & { payload: unknown }>(`/admin/api/jobs/${viewing}`),
    enabled: viewing !== null,
  });
  const retry = useMutation({
    mutationFn: (body: { ids: number[] } | { allDead: true; kind?: string }) =>
      api<{ retried: number }>('/admin/api/jobs/retry', { method: 'POST', body }),
    onSuccess: () => {
      setPicked([]);
      void qc.invalidateQueries({ queryKey: ['jobs'] });
    },
  });
  const toggle = (id: number) => setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id]));
  return (
    <>
      <h1>Dead jobs</h1>
      <div className="toolbar">
        <label htmlFor="job-kind">Kind</label>
        <select id="job-kind" value={kind} onChange={(e) => setKind(e.target.value)}>
          <option value="">all kinds</option>
          {(jobs.data?.kinds ?? []).map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        <button type="button" disabled={!picked.length} onClick={() => retry.mutate({ ids: picked })}>
          Retry selected ({picked.length})
        </button>
        <button
          type="button"
          disabled={!jobs.data?.jobs.length}
          onClick={() => retry.mutate(kind ? { allDead: true, kind } : { allDead: true })}
        >
          Retry all shown
        </button>
        {retry.data && <span role="status">Retried {retry.data.retried} job(s).</span>}
        {retry.isError && <Failed error={retry.error} />}
      </div>
      {jobs.isPending ? (
        <Loading what="dead jobs" />
      ) : jobs.isError ? (
        <Failed error={jobs.error} />
      ) : !jobs.data.jobs.length ? (
        <p>No dead jobs.</p>
      ) : (
        <Section title={`${jobs.data.jobs.length} dead job(s)`}>
          <table>
            <thead>
              <tr>
                <th scope="col">
                  <span className="sr-only">Select</span>
                </th>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Scope</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last error</th>
                <th scope="col">Updated</th>
                <th scope="col">Payload</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.jobs.map((j) => (
                <tr key={j.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`select job ${j.id}`}
                      checked={picked.includes(j.id)}
                      onChange={() => toggle(j.id)}
                    />
                  </td>
                  <td>{j.id}</td>
                  <td>{j.kind}</td>
                  <td>{j.scope}</td>
                  <td>
                    {j.attempts}/{j.maxAttempts}
                  </td>
                  <td className="error">{j.lastError?.slice(0, 300)}</td>
                  <td>{fmtTime(j.updatedAt)}</td>
                  <td>
                    <button type="button" className="ghost" onClick={() => setViewing(j.id)}>
                      View {j.id}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      {viewing !== null && (
        <Section
          title={`Job ${viewing} payload (secrets masked)`}
          actions={
            <button type="button" className="ghost" onClick={() => setViewing(null)}>
              Close
            </button>
          }
        >
          {payload.data ? (
            <Json value={payload.data.payload} label={`job ${viewing} payload`} />
          ) : (
            <Loading what="payload" />
          )}
        </Section>
      )}
    </>
  );
}
