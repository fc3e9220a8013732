import { eventsModule } from '../../src/capabilities/events/index.js';
import { apiKeysModule } from '../../src/platform/apikeys/index.js';
import { callsModule, type CallsSettings } from '../../src/capabilities/calls/index.js';
import { ADMIN, PUBLIC_URL, startBridge, startWorld, type ProviderBridge, type World } from '../provider/harness.js';

export { ADMIN, PUBLIC_URL };

export interface CallsWorld {
  w: World;
  b: ProviderBridge;
  /** An API key for every location of the world. */
  key: string;
  /** Location → the bridge's workflow webhook URL (with its token), pointing at the test bridge. */
  workflowUrl(locationId: string): Promise<string>;
  /** Emulator control action: a call made in GHL (returns its message id). */
  ghlCall(body: Record<string, unknown>): Promise<{ messageId: string; conversationId: string }>;
  /** Emulator control action: the workflow webhook action fires. */
  fireWorkflow(body: Record<string, unknown>): Promise<{ status: number; body: string }>;
  api(path: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export async function startCalls(
  o: {
    locations?: number;
    settings?: Partial<CallsSettings>;
    env?: Record<string, string>;
    /** Run the event subscriptions module too (deliveries to loopback receivers). */
    events?: boolean;
  } = {},
): Promise<CallsWorld> {
  const w = await startWorld({ locations: o.locations ?? 2 });
  const env = {
    ...(o.events ? { EVENTS_ALLOWED_NETWORKS: '127.0.0.1/32', EVENTS_POLL_MS: '100' } : {}),
    ...o.env,
  };
  const b = await startBridge(w, {
    modules: [
      apiKeysModule(),
      ...(o.events ? [eventsModule()] : []),
      callsModule({
        settings: { transcriptWaitMs: 4000, transcriptRetryBaseMs: 40, messageGraceMs: 3000, ...o.settings },
      }),
    ],
    env,
  });
  w.emu.control.updateApp(w.clientId, { webhookUrl: `${b.url}/webhooks/ghl` });
  const { key } = await b.ctx.services.get('apiKeys').create({ name: 'calls-test', locationIds: w.locationIds });
  const emu = async (path: string, body: unknown) => {
    const r = await fetch(`${w.emu.baseUrl}/_emulator${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const j = (await r.json()) as Record<string, unknown>;
    if (r.status >= 300) throw new Error(`emulator ${path}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  };
  return {
    w,
    b,
    key,
    workflowUrl: async (l) => (await b.ctx.services.get('calls').endpoints.url(l)).replace(PUBLIC_URL, b.url),
    ghlCall: async (body) => (await emu('/calls', body)) as { messageId: string; conversationId: string },
    fireWorkflow: async (body) => (await emu('/workflow-webhook', body)) as { status: number; body: string },
    api: (path, init = {}) => {
      const k = init.key === undefined ? key : init.key;
      const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
      if (k) headers.authorization = `Bearer ${k}`;
      if (init.body) headers['content-type'] = 'application/json';
      return fetch(`${b.url}${path}`, { ...init, headers });
    },
    close: async () => {
      await b.close();
      await w.emu.close();
    },
  };
}
