import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, fmtTime } from '../api';
import { Failed, Loading, Section, Status } from '../ui';

interface TriggerRequest {
  id: number;
  locationId: string;
  name: string;
  idempotencyKey: string;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  receivedAt: string;
  deliveredAt: string | null;
}

interface Mapping {
  locationId: string;
  externalId: string;
  opportunityId: string;
  name: string | null;
  pipelineName: string | null;
  pipelineId: string | null;
  stageName: string | null;
  stageId: string | null;
  status: string | null;
  monetaryValue: number | null;
  updatedAt: string;
}

const STATES = ['', 'pending', 'delivered', 'dead'];

/** Read-only: workflow trigger calls (your system → GHL) and the opportunity map (external deal id → GHL). */
export function Pipelines() {
  const [state, setState] = useState('');
  const [location, setLocation] = useState('');
  const qs = new URLSearchParams();
  if (state) qs.set('state', state);
  if (location.trim()) qs.set('locationId', location.trim());
  const mq = new URLSearchParams();
  if (location.trim()) mq.set('locationId', location.trim());
  const triggers = useQuery({
    queryKey: ['trigger-requests', qs.toString()],
    queryFn: () => api<{ requests: TriggerRequest[] }>(`/admin/api/trigger-requests?${qs.toString()}`),
    refetchInterval: 5_000,
  });
  const map = useQuery({
    queryKey: ['opportunity-map', mq.toString()],
    queryFn: () => api<{ mappings: Mapping[] }>(`/admin/api/opportunity-map?${mq.toString()}`),
    refetchInterval: 5_000,
  });
  const reqs = triggers.data?.requests ?? [];
  const rows = map.data?.mappings ?? [];
  return (
    <>
      <h1>Triggers and deals</h1>
      <div className="toolbar">
        <label htmlFor="pl-state">Trigger state</label>
        <select id="pl-state" value={state} onChange={(e) => setState(e.target.value)}>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s || 'any'}
            </option>
          ))}
        </select>
        <label htmlFor="pl-loc">Location</label>
        <input id="pl-loc" value={location} onChange={(e) => setLocation(e.target.value)} />
      </div>
      {triggers.isPending ? (
        <Loading what="trigger calls" />
      ) : triggers.isError ? (
        <Failed error={triggers.error} />
      ) : (
        <Section title={`Workflow trigger calls (${reqs.length})`}>
          {!reqs.length ? (
            <p>No trigger calls match.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Id</th>
                  <th scope="col">Trigger</th>
                  <th scope="col">Location</th>
                  <th scope="col">State</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last answer</th>
                  <th scope="col">Last error</th>
                  <th scope="col">Received</th>
                  <th scope="col">Delivered</th>
                </tr>
              </thead>
              <tbody>
                {reqs.map((r) => (
                  <tr key={r.id}>
                    <td>{r.id}</td>
                    <td>{r.name}</td>
                    <td>{r.locationId}</td>
                    <td>
                      <Status value={r.state} />
                    </td>
                    <td>{r.attempts}</td>
                    <td>{r.lastStatus ?? '—'}</td>
                    <td>{r.lastError ?? '—'}</td>
                    <td>{fmtTime(r.receivedAt)}</td>
                    <td>{fmtTime(r.deliveredAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
      )}
      {map.isPending ? (
        <Loading what="opportunity map" />
      ) : map.isError ? (
        <Failed error={map.error} />
      ) : (
        <Section title={`Opportunity map (${rows.length})`}>
          {!rows.length ? (
            <p>No deals are mapped yet.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">External id</th>
                  <th scope="col">Opportunity</th>
                  <th scope="col">Location</th>
                  <th scope="col">Pipeline</th>
                  <th scope="col">Stage</th>
                  <th scope="col">Status</th>
                  <th scope="col">Value</th>
                  <th scope="col">Updated</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((m) => (
                  <tr key={`${m.locationId}/${m.externalId}`}>
                    <td>{m.externalId}</td>
                    <td>
                      {m.name ?? '—'} <span className="muted">{m.opportunityId}</span>
                    </td>
                    <td>{m.locationId}</td>
                    <td>{m.pipelineName ?? m.pipelineId ?? '—'}</td>
                    <td>{m.stageName ?? m.stageId ?? '—'}</td>
                    <td>
                      <Status value={m.status} />
                    </td>
                    <td>{m.monetaryValue ?? '—'}</td>
                    <td>{fmtTime(m.updatedAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
      )}
    </>
  );
}
