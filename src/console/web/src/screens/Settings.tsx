import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, fmtTime } from '../api';
import { Failed, Json, Loading, Section, Status } from '../ui';

interface SettingsData {
  deliveryUrl: string | null;
  deliveryTokens: {
    source: string;
    tokens: Array<{ generation: number; masked: string; current: boolean; createdAt: string; retireAt: string | null }>;
  } | null;
  channels: Array<{
    locationId: string;
    kind: string;
    enabled: boolean;
    config: Record<string, unknown>;
    updatedAt: string;
  }>;
  encryption: {
    source: string;
    primaryKeyId: string | null;
    keyIds: string[];
    rowsByKey: Record<string, number>;
    rowsOnOlderKeys: number;
  };
  publicUrl: string;
  mode: string;
}

export function Settings() {
  const qc = useQueryClient();
  const s = useQuery({ queryKey: ['settings'], queryFn: () => api<SettingsData>('/admin/api/settings') });
  const rotate = useMutation({
    mutationFn: () =>
      api<{ deliveryUrl: string }>('/admin/api/settings/delivery-token/rotate', {
        method: 'POST',
        body: { overlapHours: 24 },
      }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['settings'] }),
  });
  if (s.isPending) return <Loading what="settings" />;
  if (s.isError) return <Failed error={s.error} />;
  const d = s.data;
  return (
    <>
      <h1>Settings</h1>
      <div className="grid">
        <Section title="Delivery URL">
          <p>
            <code data-testid="delivery-url">{d.deliveryUrl ?? 'provider module not loaded'}</code>
          </p>
          <p className="muted">
            The token is secret and never shown here; read the full URL with{' '}
            <code>ghl-bridge provider delivery-url</code> to paste it into the Marketplace app. After a rotation the
            previous token is accepted for 24 h.
          </p>
          {d.deliveryTokens && (
            <table>
              <thead>
                <tr>
                  <th scope="col">Generation</th>
                  <th scope="col">Token</th>
                  <th scope="col">State</th>
                  <th scope="col">Created</th>
                  <th scope="col">Retires</th>
                </tr>
              </thead>
              <tbody>
                {d.deliveryTokens.tokens.map((t) => (
                  <tr key={t.generation}>
                    <td>{t.generation}</td>
                    <td>
                      <code>{t.masked}</code>
                    </td>
                    <td>
                      <Status value={t.current ? 'current' : 'previous'} />
                    </td>
                    <td>{fmtTime(t.createdAt)}</td>
                    <td>{fmtTime(t.retireAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <button
            type="button"
            disabled={d.deliveryTokens?.source !== 'store' || rotate.isPending}
            onClick={() => {
              if (window.confirm('Rotate the Delivery URL token? GHL must be given the new URL within 24 h.'))
                rotate.mutate();
            }}
          >
            Rotate delivery token
          </button>
          {rotate.isSuccess && <p role="status">Rotated. New URL: {rotate.data.deliveryUrl}</p>}
          {rotate.isError && <Failed error={rotate.error} />}
        </Section>
        <Section title="Encryption keys">
          <dl className="facts">
            <dt>Source</dt>
            <dd>{d.encryption.source}</dd>
            <dt>Primary key</dt>
            <dd>{d.encryption.primaryKeyId ?? '—'}</dd>
            <dt>Keys configured</dt>
            <dd>{d.encryption.keyIds.join(', ') || '—'}</dd>
            <dt>Secrets per key</dt>
            <dd>
              {Object.entries(d.encryption.rowsByKey)
                .map(([k, n]) => `${k}: ${n}`)
                .join(', ') || 'none stored'}
            </dd>
            <dt>On older keys</dt>
            <dd>
              <Status
                value={d.encryption.rowsOnOlderKeys ? `${d.encryption.rowsOnOlderKeys} (run keys rotate)` : 'ok'}
              />
            </dd>
          </dl>
        </Section>
      </div>
      <Channels channels={d.channels} />
    </>
  );
}

function Channels({ channels }: { channels: SettingsData['channels'] }) {
  const qc = useQueryClient();
  const [locationId, setLocationId] = useState('');
  const [config, setConfig] = useState('{"kind":"loopback","autoReply":true}');
  const [parseError, setParseError] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (body: { loc: string; config: unknown }) =>
      api(`/admin/channels/${encodeURIComponent(body.loc)}`, { method: 'PUT', body: { config: body.config } }),
    onSuccess: () => {
      setConfig('');
      void qc.invalidateQueries({ queryKey: ['settings'] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setParseError(null);
    try {
      save.mutate({ loc: locationId.trim(), config: JSON.parse(config) as unknown });
    } catch {
      setParseError('the channel config is not valid JSON');
    }
  };
  return (
    <Section title="Channels per location">
      <table>
        <thead>
          <tr>
            <th scope="col">Location</th>
            <th scope="col">Kind</th>
            <th scope="col">Enabled</th>
            <th scope="col">Config (secrets masked)</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {channels.map((c) => (
            <tr key={c.locationId}>
              <td>
                <a href={`#/locations/${encodeURIComponent(c.locationId)}`}>{c.locationId}</a>
              </td>
              <td>{c.kind}</td>
              <td>
                <Status value={c.enabled ? 'yes' : 'no'} />
              </td>
              <td>
                <Json value={c.config} label={`channel config ${c.locationId}`} />
              </td>
              <td>{fmtTime(c.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="channel-form" onSubmit={submit}>
        <h3>Configure a channel</h3>
        <label htmlFor="ch-loc">Location id</label>
        <input id="ch-loc" value={locationId} onChange={(e) => setLocationId(e.target.value)} required />
        <label htmlFor="ch-config">
          Channel config (JSON; secrets are write-only: they are encrypted and never shown again)
        </label>
        <textarea id="ch-config" rows={5} value={config} onChange={(e) => setConfig(e.target.value)} required />
        <button type="submit" disabled={save.isPending}>
          Save channel
        </button>
        {parseError && (
          <p role="alert" className="error">
            {parseError}
          </p>
        )}
        {save.isError && <Failed error={save.error} />}
        {save.isSuccess && <p role="status">Saved.</p>}
      </form>
    </Section>
  );
}
