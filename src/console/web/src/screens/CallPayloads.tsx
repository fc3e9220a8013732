import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, fmtTime } from '../api';
import { Failed, Loading, Section, Status } from '../ui';

/** One workflow payload or call event that made no call (GET /admin/api/calls/rejected). */
interface Rejected {
  id: number;
  receivedAt: string;
  locationId: string;
  source: 'workflow' | 'app';
  state: 'unmappable' | 'forged' | 'failed';
  reason: string | null;
  excerpt: string;
}
const STATES = ['', 'unmappable', 'forged', 'failed'];

/**
 * Calls (issue 15): the workflow payloads the bridge kept but could not turn into a call — unmappable (the field
 * mapping found no contact or no call details), forged (GHL did not confirm the contact or message) or failed —
 * with the reason and a payload excerpt whose secrets and personal data the bridge masked.
 */
export function CallPayloads() {
  const [state, setState] = useState('');
  const [location, setLocation] = useState('');
  const qs = new URLSearchParams();
  if (state) qs.set('state', state);
  if (location.trim()) qs.set('locationId', location.trim());
  const list = useQuery({
    queryKey: ['calls-rejected', qs.toString()],
    queryFn: () => api<{ available: boolean; entries: Rejected[] }>(`/admin/api/calls/rejected?${qs.toString()}`),
    refetchInterval: 5_000,
  });
  const rows = list.data?.entries ?? [];
  return (
    <>
      <h1>Rejected call payloads</h1>
      <p className="muted">
        Workflow webhook payloads and call events kept without making a call. Fix the endpoint’s field mapping (PUT
        /admin/calls/endpoints/&lt;location&gt;) or the workflow’s custom data, then let the workflow fire again.
      </p>
      <div className="toolbar">
        <label htmlFor="cp-state">Reason kind</label>
        <select id="cp-state" value={state} onChange={(e) => setState(e.target.value)}>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s || 'any'}
            </option>
          ))}
        </select>
        <label htmlFor="cp-loc">Location</label>
        <input id="cp-loc" value={location} onChange={(e) => setLocation(e.target.value)} />
      </div>
      {list.isPending ? (
        <Loading what="rejected call payloads" />
      ) : list.isError ? (
        <Failed error={list.error} />
      ) : !list.data.available ? (
        <p>The calls module does not run in this bridge.</p>
      ) : !rows.length ? (
        <p>No rejected call payloads.</p>
      ) : (
        <Section title={`${rows.length} payload(s)`}>
          <table>
            <thead>
              <tr>
                <th scope="col">Received</th>
                <th scope="col">Location</th>
                <th scope="col">Source</th>
                <th scope="col">Kind</th>
                <th scope="col">Reason</th>
                <th scope="col">Payload (masked)</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id}>
                  <td>{fmtTime(r.receivedAt)}</td>
                  <td>{r.locationId}</td>
                  <td>{r.source}</td>
                  <td>
                    <Status value={r.state} />
                  </td>
                  <td>{r.reason ?? '—'}</td>
                  <td>
                    <code>{r.excerpt}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
    </>
  );
}
