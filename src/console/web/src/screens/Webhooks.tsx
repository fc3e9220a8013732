import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, fmtTime } from '../api';
import { Failed, Json, Loading, Section, Status } from '../ui';

interface Event {
  id: number;
  source: string;
  type: string | null;
  status: string;
  reason: string | null;
  location_id: string | null;
  signature: string;
  attempts: number;
  received_at: string;
}
const STATUSES = ['', 'dead', 'received', 'dispatched', 'skipped', 'unknown_type'];

export function Webhooks() {
  const qc = useQueryClient();
  const [status, setStatus] = useState('dead');
  const [type, setType] = useState('');
  const [location, setLocation] = useState('');
  const [picked, setPicked] = useState<number[]>([]);
  const [viewing, setViewing] = useState<number | null>(null);
  const qs = new URLSearchParams();
  if (status) qs.set('status', status);
  if (type.trim()) qs.set('type', type.trim());
  if (location.trim()) qs.set('locationId', location.trim());
  const events = useQuery({
    queryKey: ['webhooks', qs.toString()],
    queryFn: () => api<{ events: Event[] }>(`/admin/api/webhooks?${qs.toString()}`),
    refetchInterval: 5_000,
  });
  const detail = useQuery({
    queryKey: ['webhook', viewing],
    queryFn: () => api<Record<string, unknown>>(`/admin/api/webhooks/${viewing}`),
    enabled: viewing !== null,
  });
  const replay = useMutation({
    mutationFn: (ids: number[]) =>
      api<{ replayed: number[]; notReplayable: Array<{ id: number; reason: string }> }>('/admin/webhooks/replay', {
        method: 'POST',
        body: { ids },
      }),
    onSuccess: () => {
      setPicked([]);
      void qc.invalidateQueries({ queryKey: ['webhooks'] });
    },
  });
  const list = events.data?.events ?? [];
  return (
    <>
      <h1>Webhook events</h1>
      <div className="toolbar">
        <label htmlFor="wh-status">Status</label>
        <select id="wh-status" value={status} onChange={(e) => setStatus(e.target.value)}>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s || 'any'}
            </option>
          ))}
        </select>
        <label htmlFor="wh-type">Type</label>
        <input id="wh-type" value={type} onChange={(e) => setType(e.target.value)} placeholder="e.g. InboundMessage" />
        <label htmlFor="wh-loc">Location</label>
        <input id="wh-loc" value={location} onChange={(e) => setLocation(e.target.value)} />
        <button type="button" disabled={!picked.length} onClick={() => replay.mutate(picked)}>
          Replay selected ({picked.length})
        </button>
        {replay.data && (
          <span role="status">
            Replayed {replay.data.replayed.length}
            {replay.data.notReplayable.length ? `, ${replay.data.notReplayable.length} not replayable` : ''}.
          </span>
        )}
        {replay.isError && <Failed error={replay.error} />}
      </div>
      {events.isPending ? (
        <Loading what="webhook events" />
      ) : events.isError ? (
        <Failed error={events.error} />
      ) : !list.length ? (
        <p>No events match.</p>
      ) : (
        <Section title={`${list.length} event(s)`}>
          <table>
            <thead>
              <tr>
                <th scope="col">
                  <span className="sr-only">Select</span>
                </th>
                <th scope="col">Id</th>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Signature</th>
                <th scope="col">Location</th>
                <th scope="col">Received</th>
                <th scope="col">Reason</th>
                <th scope="col">Payload</th>
              </tr>
            </thead>
            <tbody>
              {list.map((e) => (
                <tr key={e.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`select event ${e.id}`}
                      checked={picked.includes(e.id)}
                      onChange={() => setPicked((p) => (p.includes(e.id) ? p.filter((x) => x !== e.id) : [...p, e.id]))}
                    />
                  </td>
                  <td>{e.id}</td>
                  <td>{e.type ?? '(unparsed)'}</td>
                  <td>
                    <Status value={e.status} />
                  </td>
                  <td>{e.signature}</td>
                  <td>{e.location_id}</td>
                  <td>{fmtTime(e.received_at)}</td>
                  <td className="error">{e.reason}</td>
                  <td>
                    <button type="button" className="ghost" onClick={() => setViewing(e.id)}>
                      View {e.id}
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
          title={`Event ${viewing} (secrets masked)`}
          actions={
            <button type="button" className="ghost" onClick={() => setViewing(null)}>
              Close
            </button>
          }
        >
          {detail.data ? <Json value={detail.data} label={`event ${viewing} payload`} /> : <Loading what="event" />}
        </Section>
      )}
    </>
  );
}
