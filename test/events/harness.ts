import { once } from 'node:events';
import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import { eventsModule, type EventsModuleOptions, type EventsRuntime } from '../../src/capabilities/events/index.js';
import type { EventsService } from '../../src/capabilities/events/index.js';
import { webhooksModule } from '../../src/platform/webhooks/index.js';
import { startTestBridge, type TestBridge } from '../helpers/store.js';
import { makeSigner, sendSigned, type TestSigner } from '../webhooks/helpers.js';

export const ADMIN = 'admin-key-for-events-tests-0123456789';

export type EventsBridge = TestBridge & {
  signer: TestSigner;
  events: EventsService;
  rt: EventsRuntime;
  /** Sends a signed GHL webhook to the app webhook URL. */
  ghl(payload: Record<string, unknown>): Promise<number>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers, checked by the tests
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
};

export async function startEventsBridge(
  o: { env?: Record<string, string>; events?: EventsModuleOptions } = {},
): Promise<EventsBridge> {
  const signer = makeSigner();
  const b = await startTestBridge({
    modules: [
      webhooksModule({ extraEd25519Keys: [signer.edPublicPem], isKnownLocation: async () => true }),
      eventsModule(o.events),
    ],
    env: {
      ADMIN_API_KEY: ADMIN,
      TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
      EVENTS_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128',
      EVENTS_POLL_MS: '100',
      ...o.env,
    },
  });
  return Object.assign(b, {
    signer,
    events: b.ctx.services.get('events'),
    rt: b.ctx.services.get('eventsInternal'),
    async ghl(payload: Record<string, unknown>) {
      return (await sendSigned(`${b.url}/webhooks/ghl`, signer, payload)).status;
    },
    async admin(method: string, path: string, body?: unknown) {
      const res = await fetch(`${b.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  });
}

export interface Received {
  id: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: { id: string; type: string; locationId: string | null; data: Record<string, unknown> };
  at: number;
}

export type Behaviour = (
  req: http.IncomingMessage,
  n: number,
) => { status: number; headers?: Record<string, string> } | 'hang';

/** A loopback endpoint recording what it got; `behaviour` decides the answer (default 200). */
export async function startReceiver(behaviour: Behaviour = () => ({ status: 200 })) {
  const got: Received[] = [];
  const hanging: http.ServerResponse[] = [];
  let n = 0;
  const listeners = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const b = behaviour(req, ++n);
      if (b === 'hang') {
        hanging.push(res);
        for (const l of listeners) l();
        return;
      }
      got.push({
        id: String(req.headers['webhook-id']),
        headers: req.headers,
        raw,
        body: JSON.parse(raw),
        at: Date.now(),
      });
      res.writeHead(b.status, { 'content-type': 'text/plain', ...b.headers });
      res.end(b.status < 300 ? 'ok' : `nope ${b.status}`);
      for (const l of listeners) l();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    hanging,
    count: () => n,
    /** Verifies one request with the standardwebhooks library (throws when it does not verify). */
    verify(r: Received, secret: string) {
      return new Webhook(secret).verify(r.raw, {
        'webhook-id': String(r.headers['webhook-id']),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      });
    },
    async close() {
      for (const h of hanging) h.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
}

export function contact(type: string, locationId: string, id: string, extra: Record<string, unknown> = {}) {
  return {
    type,
    locationId,
    id,
    firstName: 'Ada',
    timestamp: new Date().toISOString(),
    webhookId: `wh_${type}_${id}_${Math.random().toString(36).slice(2)}`,
    ...extra,
  };
}
