import { apiKeysModule } from '../../src/platform/apikeys/index.js';
import { contactsModule } from '../../src/capabilities/contacts/index.js';
import type { BridgeModule } from '../../src/app.js';
import type { EmulatorOptions } from '../../src/emulator/index.js';
import type { RateLimitOptions } from '../../src/platform/ghl/ratelimit.js';
import { SCOPES, startBridge, startWorld, type ProviderBridge, type World } from '../provider/harness.js';

export const CONTACT_SCOPES = `${SCOPES} locations/customFields.readonly locations/customFields.write`;

export interface ContactsWorld {
  w: World;
  b: ProviderBridge;
  key: string;
  api(path: string, init?: { method?: string; body?: unknown; key?: string | null }): Promise<Response>;
  /** GHL calls the emulator answered on /contacts and /locations paths since `since` (an index into the log). */
  ghlCalls(since?: number): Array<{ method: string; path: string; status: number }>;
  mark(): number;
  /** Polls the batch until it is completed (deadline), returns its body. */
  waitBatch(loc: string, batchId: string, timeoutMs?: number): Promise<BatchBody>;
  push(loc: string, records: unknown[]): Promise<BatchBody>;
  close(): Promise<void>;
}

export interface BatchBody {
  batchId: string;
  state: string;
  status: string | null;
  total: number;
  done: number;
  counts: Record<string, number>;
  records: Array<{
    index: number;
    externalId: string;
    outcome: string | null;
    contactId: string | null;
    reason: string | null;
  }>;
}

export async function startContacts(
  o: {
    locations?: number;
    emulator?: EmulatorOptions;
    env?: Record<string, string>;
    limits?: Partial<RateLimitOptions>;
    /** Extra modules before contacts (e.g. events). */
    modules?: BridgeModule[];
  } = {},
): Promise<ContactsWorld> {
  const w = await startWorld({ locations: o.locations ?? 2, ...(o.emulator ? { emulator: o.emulator } : {}) });
  w.emu.control.updateApp(w.clientId, { scopes: CONTACT_SCOPES });
  const b = await startBridge(w, {
    env: { GHL_SCOPES: CONTACT_SCOPES, PROVIDER_CATCHUP_INTERVAL_MS: '0', ...o.env },
    modules: [apiKeysModule(), ...(o.modules ?? []), contactsModule()],
    ...(o.limits ? { limits: o.limits } : {}),
  });
  w.emu.control.updateApp(w.clientId, { webhookUrl: `${b.url}/webhooks/ghl` });
  const { key } = await b.ctx.services.get('apiKeys').create({ name: 'contacts tests', locationIds: w.locationIds });
  const api: ContactsWorld['api'] = (path, init = {}) => {
    const k = init.key === undefined ? key : init.key;
    const headers: Record<string, string> = {};
    if (k) headers.authorization = `Bearer ${k}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${b.url}${path}`, {
      method: init.method ?? 'GET',
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  };
  const waitBatch = async (loc: string, batchId: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await api(`/v1/locations/${loc}/contacts/batches/${batchId}`);
      const body = (await r.json()) as BatchBody;
      if (r.status !== 200) throw new Error(`batch ${batchId}: ${r.status} ${JSON.stringify(body)}`);
      if (body.state === 'completed') return body;
      if (Date.now() > deadline) throw new Error(`batch ${batchId} not completed: ${JSON.stringify(body)}`);
      await new Promise((res) => setTimeout(res, 25));
    }
  };
  return {
    w,
    b,
    key,
    api,
    mark: () => w.emu.control.listApiCalls().length,
    ghlCalls: (since = 0) =>
      w.emu.control
        .listApiCalls()
        .slice(since)
        .filter((c) => /^\/(contacts|locations)/.test(c.path)),
    waitBatch,
    async push(loc, records) {
      const r = await api(`/v1/locations/${loc}/contacts/batches`, { method: 'POST', body: { records } });
      const body = (await r.json()) as { batchId: string };
      if (r.status !== 202) throw new Error(`push: ${r.status} ${JSON.stringify(body)}`);
      return waitBatch(loc, body.batchId);
    },
    close: async () => {
      await b.close();
      await w.emu.close();
    },
  };
}
