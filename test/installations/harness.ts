import { createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import {
  installationsModule,
  type InstallationsModuleOptions,
  installationsServices,
  type InstallationsServices,
} from '../../src/platform/installations/index.js';
import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import type { BridgeModule } from '../../src/app.js';
import { startTestBridge, type TestBridge } from '../helpers/store.js';

export const PUBLIC_URL = 'http://bridge.test';
export const SCOPES =
  'contacts.readonly contacts.write conversations.readonly conversations.write conversations/message.readonly conversations/message.write locations.readonly locations/customFields.readonly locations/customFields.write oauth.readonly oauth.write';

/** What the emulator answered on /oauth/token and to API calls (observed on its own server). */
export interface Observed {
  codeGrants: number;
  refreshGrants: number;
  invalidGrants: number;
  api401: number;
  api429: number;
  /** Authorization header per (resource) path call: [path, bearer]. */
  calls: Array<{ method: string; path: string; auth: string | undefined; status: number }>;
}

export interface GhlWorld {
  emu: Emulator;
  observed: Observed;
  companyId: string;
  locationIds: string[];
  clientId: string;
  clientSecret: string;
  env: Record<string, string>;
}

/** An emulator with one agency of `locations` sub-accounts and our app registered. */
export async function startGhl(
  o: { locations?: number; emulator?: EmulatorOptions; distribution?: 'location' | 'agency' | 'both' } = {},
): Promise<GhlWorld> {
  const emu = await createEmulator({ rsaModulusLength: 1024, ...o.emulator });
  const observed: Observed = { codeGrants: 0, refreshGrants: 0, invalidGrants: 0, api401: 0, api429: 0, calls: [] };
  emu.app.addHook('onResponse', async (req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if (path.startsWith('/_emulator')) return;
    if (path === '/oauth/token') {
      const b = (req.body ?? {}) as { grant_type?: string };
      if (b.grant_type === 'refresh_token' && reply.statusCode === 200) observed.refreshGrants++;
      if (b.grant_type === 'authorization_code' && reply.statusCode === 200) observed.codeGrants++;
      if (reply.statusCode === 400) observed.invalidGrants++;
      return;
    }
    if (reply.statusCode === 401) observed.api401++;
    if (reply.statusCode === 429) observed.api429++;
    observed.calls.push({ method: req.method, path, auth: req.headers.authorization, status: reply.statusCode });
  });
  await emu.listen();
  const agency = emu.control.createAgency({ name: 'Agency' });
  const locationIds: string[] = [];
  for (let i = 0; i < (o.locations ?? 2); i++)
    locationIds.push(emu.control.createLocation({ companyId: agency.id, name: `Location ${i}` }).id);
  const app = emu.control.createApp({
    name: 'ghl-bridge',
    redirectUri: `${PUBLIC_URL}/oauth/callback`,
    scopes: SCOPES,
    ...(o.distribution ? { distribution: o.distribution } : {}),
  });
  const env = {
    SANDBOX: 'false',
    GHL_CLIENT_ID: app.clientId,
    GHL_CLIENT_SECRET: app.clientSecret,
    GHL_API_BASE: emu.baseUrl,
    GHL_MARKETPLACE_BASE: emu.baseUrl,
    GHL_SCOPES: SCOPES,
    PUBLIC_URL,
    TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
    GHL_RECONCILE_INTERVAL_MIN: '0',
  };
  return {
    emu,
    observed,
    companyId: agency.id,
    locationIds,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    env,
  };
}

export type BridgeWithGhl = TestBridge & { s: InstallationsServices };

export async function startBridge(
  w: GhlWorld,
  o: InstallationsModuleOptions & { env?: Record<string, string>; before?: BridgeModule[] } = {},
): Promise<BridgeWithGhl> {
  const { env, before, ...mod } = o;
  const b = await startTestBridge({
    modules: [...(before ?? []), installationsModule({ now: () => w.emu.clock.now(), ...mod })],
    env: { ...w.env, ...env },
  });
  return Object.assign(b, { s: installationsServices(b.ctx.services) });
}

/** Drives the real install flow: bridge /oauth/install → emulator chooselocation → bridge callback. */
export async function install(
  b: TestBridge,
  pick: { locationId: string } | { companyId: string; bulk?: boolean; locationIds?: string[] },
): Promise<Response> {
  const r1 = await fetch(`${b.url}/oauth/install`, { redirect: 'manual' });
  if (r1.status !== 302) throw new Error(`install: expected 302, got ${r1.status}`);
  const choose = new URL(r1.headers.get('location')!);
  if ('locationId' in pick) choose.searchParams.set('locationId', pick.locationId);
  else {
    choose.searchParams.set('companyId', pick.companyId);
    if (pick.bulk) choose.searchParams.set('bulk', 'true');
    if (pick.locationIds) choose.searchParams.set('locationIds', pick.locationIds.join(','));
  }
  const r2 = await fetch(choose, { redirect: 'manual' });
  if (r2.status !== 302) throw new Error(`chooselocation: expected 302, got ${r2.status} ${await r2.text()}`);
  const cb = new URL(r2.headers.get('location')!);
  return fetch(`${b.url}${cb.pathname}${cb.search}`, { redirect: 'manual' });
}
