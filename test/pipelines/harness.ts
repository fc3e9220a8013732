import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import { createEmulator, type Emulator } from '../../src/emulator/index.js';
import { apiKeysModule } from '../../src/platform/apikeys/index.js';
import { installationsModule } from '../../src/platform/installations/index.js';
import { webhooksModule } from '../../src/platform/webhooks/index.js';
import { pipelinesModule, type PipelinesModuleOptions } from '../../src/capabilities/pipelines/index.js';
import type { Logger } from '../../src/infra/log/logger.js';
import { startTestBridge, type TestBridge } from '../helpers/store.js';
import { install } from '../provider/harness.js';

export const ADMIN = 'admin-key-for-pipelines-tests-0123456789';
export const SCOPES =
  'contacts.readonly contacts.write locations.readonly opportunities.readonly opportunities.write oauth.readonly';

export interface PipelinesWorld {
  emu: Emulator;
  bridge: TestBridge;
  locationId: string;
  otherLocationId: string;
  /** An API key scoped to `locationId`. */
  key: string;
  close(): Promise<void>;
  /** fetch against the bridge with the API key (or `as`) as bearer. */
  api(path: string, init?: RequestInit & { as?: string | null; json?: unknown }): Promise<Response>;
  admin(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

export async function startPipelinesWorld(
  o: { module?: PipelinesModuleOptions; log?: Logger } = {},
): Promise<PipelinesWorld> {
  const emu = await createEmulator({ rsaModulusLength: 1024, seed: 16 });
  await emu.listen();
  const c = emu.control;
  const ag = c.createAgency({ name: 'Agency' });
  c.createUser({ companyId: ag.id, type: 'agency' });
  const locationId = c.createLocation({ companyId: ag.id, name: 'Store', email: 'store@example.com' }).id;
  const otherLocationId = c.createLocation({ companyId: ag.id, name: 'Other', email: 'other@example.com' }).id;
  const PUBLIC_URL = 'http://bridge.test';
  const app = c.createApp({ name: 'ghl-bridge', redirectUri: `${PUBLIC_URL}/oauth/callback`, scopes: SCOPES });
  const bridge = await startTestBridge({
    modules: [
      webhooksModule({ extraEd25519Keys: [emu.keys.ed25519PublicKeyPem], extraRsaKeys: [emu.keys.rsaPublicKeyPem] }),
      installationsModule({ now: () => emu.clock.now() }),
      apiKeysModule(),
      pipelinesModule({ refreshMinMs: 0, ...o.module }),
    ],
    env: {
      JOB_POLL_MS: '50',
      SANDBOX: 'false',
      GHL_CLIENT_ID: app.clientId,
      GHL_CLIENT_SECRET: app.clientSecret,
      GHL_API_BASE: emu.baseUrl,
      GHL_MARKETPLACE_BASE: emu.baseUrl,
      GHL_SCOPES: SCOPES,
      PUBLIC_URL,
      TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
      GHL_RECONCILE_INTERVAL_MIN: '0',
      ADMIN_API_KEY: ADMIN,
      LOG_LEVEL: o.log ? 'debug' : 'silent',
    },
    ...(o.log ? { log: () => o.log! } : {}),
  });
  c.updateApp(app.clientId, { webhookUrl: `${bridge.url}/webhooks/ghl` });
  await install(bridge.url, locationId);
  const { key } = await bridge.ctx.services.get('apiKeys').create({ name: 'crm', locationIds: [locationId] });
  const req = (auth: string | null, path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const headers: Record<string, string> = { ...(rest.headers as Record<string, string> | undefined) };
    if (auth) headers.authorization = `Bearer ${auth}`;
    if (json !== undefined) headers['content-type'] = 'application/json';
    return fetch(bridge.url + path, {
      ...rest,
      headers,
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    });
  };
  return {
    emu,
    bridge,
    locationId,
    otherLocationId,
    key,
    api: (path, init = {}) => {
      const { as, ...rest } = init;
      return req(as === undefined ? key : as, path, rest);
    },
    admin: (path, init = {}) => req(ADMIN, path, init),
    async close() {
      await bridge.close();
      await emu.close();
    },
  };
}

/** The sum of a Prometheus series over the lines whose labels include `labels`. */
export async function metricValue(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const got = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[2]);
  }
  return sum;
}
