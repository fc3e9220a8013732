import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  json: Record<string, unknown>;
}

/** A real HTTP receiver that records raw request bytes; `respond` decides the status per request. */
export class Receiver {
  readonly received: Received[] = [];
  respond: (r: Received, index: number) => number = () => 200;
  private waiters: { n: number; resolve: () => void }[] = [];
  private server: Server;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const r: Received = {
          path: req.url ?? '',
          headers: req.headers,
          raw,
          json: JSON.parse(raw.toString('utf8') || '{}'),
        };
        this.received.push(r);
        const status = this.respond(r, this.received.length - 1);
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"ok":true}');
        this.waiters = this.waiters.filter((w) => (this.received.length >= w.n ? (w.resolve(), false) : true));
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Resolves once at least n requests have arrived. */
  waitFor(n: number): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface World {
  emu: Emulator;
  base: string;
  companyId: string;
  locationId: string;
  app: { appId: string; clientId: string; clientSecret: string; conversationProviderId?: string };
  receiver: Receiver;
}

export const ALL_SCOPES = [
  'contacts.readonly',
  'contacts.write',
  'conversations.readonly',
  'conversations.write',
  'conversations/message.readonly',
  'conversations/message.write',
  'locations.readonly',
  'locations/customFields.readonly',
  'locations/customFields.write',
  'oauth.readonly',
  'oauth.write',
  'opportunities.readonly',
  'opportunities.write',
];

/** Emulator + agency + location + SMS provider app whose webhook and delivery URLs point at a Receiver. */
export async function world(
  opts: EmulatorOptions = {},
  provider: { type: 'SMS' | 'Email'; isCustom?: boolean } = { type: 'SMS' },
): Promise<World> {
  const emu = await createEmulator({ seed: 42, ...opts });
  const base = await emu.listen();
  const receiver = new Receiver();
  const rurl = await receiver.start();
  const ag = emu.control.createAgency({ name: 'Acme Agency' });
  emu.control.createUser({ companyId: ag.id, name: 'Agency Admin', type: 'agency' });
  const loc = emu.control.createLocation({ companyId: ag.id, name: 'Acme Store', phone: '+15550000001' });
  const app = emu.control.createApp({
    name: 'Bridge',
    redirectUri: 'http://127.0.0.1:1/callback',
    scopes: ALL_SCOPES,
    webhookUrl: `${rurl}/webhooks`,
    providerDeliveryUrl: `${rurl}/provider`,
    conversationProvider: provider,
  });
  return { emu, base, companyId: ag.id, locationId: loc.id, app, receiver };
}

export async function tokenFor(
  w: World,
  where: { locationId?: string; companyId?: string },
): Promise<Record<string, unknown>> {
  const { code } = w.emu.control.authorize({ clientId: w.app.clientId, ...where });
  const res = await fetch(`${w.base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      client_id: w.app.clientId,
      client_secret: w.app.clientSecret,
      grant_type: 'authorization_code',
      code,
      user_type: where.locationId ? 'Location' : 'Company',
    }),
  });
  if (res.status !== 200) throw new Error(`token exchange failed ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

export async function api(
  w: World,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  version = '2021-04-15',
) {
  const res = await fetch(`${w.base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      version,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> & { [k: string]: unknown },
  };
}

export async function closeWorld(w: World): Promise<void> {
  await w.emu.close();
  await w.receiver.close();
}
