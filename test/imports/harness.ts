import { apiKeysModule } from '../../src/platform/apikeys/index.js';
import { eventsModule } from '../../src/capabilities/events/index.js';
import { importsModule, type ImportProgress } from '../../src/capabilities/imports/index.js';
import type { BulkContactsInput, BulkContactsResult } from '../../src/emulator/bulk-contacts.js';
import { waitFor } from '../helpers/store.js';
import { ADMIN, startBridge, startWorld, type ProviderBridge, type World } from '../provider/harness.js';

export { ADMIN };

export type Progress = ImportProgress & {
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  decisions?: Record<string, number>;
};

export interface ImportWorld {
  w: World;
  b: ProviderBridge;
  api(path: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  json<T = Record<string, unknown>>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  bulk(input: Omit<BulkContactsInput, 'locationId'> & { locationId?: string }): BulkContactsResult;
  start(locationId: string, body?: Record<string, unknown>): Promise<Progress>;
  progress(locationId: string, id: string): Promise<Progress>;
  /** Polls until the import is in `status` (default completed). */
  until(locationId: string, id: string, status?: string, timeoutMs?: number): Promise<Progress>;
  close(): Promise<void>;
}

export async function startImports(o: { locations?: number; env?: Record<string, string> } = {}): Promise<ImportWorld> {
  const w = await startWorld({
    locations: o.locations ?? 2,
    emulator: { rateLimit: { burst: 1000, intervalMs: 10_000, daily: 200_000 } },
  });
  const b = await startBridge(w, {
    modules: [apiKeysModule(), eventsModule(), importsModule()],
    env: { EVENTS_ALLOWED_NETWORKS: '127.0.0.1/32', EVENTS_POLL_MS: '100', ...o.env },
    limits: { burst: 1000 },
  });
  const api: ImportWorld['api'] = (path, init = {}) => {
    const k = init.key === undefined ? ADMIN : init.key;
    const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
    if (k) headers.authorization = `Bearer ${k}`;
    if (init.body) headers['content-type'] = 'application/json';
    return fetch(`${b.url}${path}`, { ...init, headers });
  };
  const json: ImportWorld['json'] = async <T>(path: string, init?: RequestInit) => {
    const r = await api(path, init);
    return { status: r.status, body: (await r.json()) as T };
  };
  const progress = async (loc: string, id: string) => (await json<Progress>(`/v1/locations/${loc}/imports/${id}`)).body;
  return {
    w,
    b,
    api,
    json,
    bulk: (input) => w.emu.control.bulkCreateContacts({ locationId: w.locationIds[0]!, ...input }),
    start: async (loc, body = {}) => {
      const r = await json<Progress>(`/v1/locations/${loc}/imports`, { method: 'POST', body: JSON.stringify(body) });
      if (r.status !== 202) throw new Error(`start: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    progress,
    until: (loc, id, status = 'completed', timeoutMs = 60_000) =>
      waitFor(
        async () => {
          const p = await progress(loc, id);
          if (p.status === 'failed' && status !== 'failed') throw new Error(`import failed: ${p.error}`);
          return p.status === status ? p : undefined;
        },
        { what: `import ${id} ${status}`, timeoutMs, intervalMs: 50 },
      ),
    close: async () => {
      await b.close();
      await w.emu.close();
    },
  };
}

/** Pairs (a < b) of every group: the duplicates detection claims. */
export function pairsOf(groups: Array<{ members: Array<{ contactId: string }> }>): Set<string> {
  const out = new Set<string>();
  for (const g of groups) {
    const ids = g.members.map((m) => m.contactId).sort();
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) out.add(`${ids[i]} ${ids[j]}`);
  }
  return out;
}
