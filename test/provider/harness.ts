import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import { LoopbackInbox } from '../../src/capabilities/channels/index.js';
import { createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { installationsModule } from '../../src/platform/installations/index.js';
import {
  providerModule,
  type CatchupSettings,
  type ConfirmationSettings,
  type ProviderService,
  type ProviderSettings,
} from '../../src/capabilities/provider/index.js';
import type { BridgeModule } from '../../src/app.js';
import type { Config } from '../../src/infra/config/index.js';
import type { Logger } from '../../src/infra/log/logger.js';
import { webhooksModule } from '../../src/platform/webhooks/index.js';
import type { RateLimitOptions } from '../../src/platform/ghl/ratelimit.js';
import { startTestBridge, type TestBridge } from '../helpers/store.js';

export const PUBLIC_URL = 'http://bridge.test';
export const ADMIN = 'admin-key-for-provider-tests-0123456789';
export const SCOPES =
  'contacts.readonly contacts.write conversations.readonly conversations.write conversations/message.readonly conversations/message.write locations.readonly';

export interface World {
  emu: Emulator;
  companyId: string;
  locationIds: string[];
  clientId: string;
  providerId: string;
  env: Record<string, string>;
}

/** An emulator with `locations` sub-accounts and our app registered as a conversation provider. */
export async function startWorld(
  o: {
    locations?: number;
    emulator?: EmulatorOptions;
    provider?: { type: 'SMS' | 'Email'; isCustom: boolean };
    locationPhones?: string[];
  } = {},
): Promise<World> {
  // Signed Delivery-URL calls unless a test asks for GHL's real (unsigned) behaviour: test/provider/unsigned.test.ts.
  const emu = await createEmulator({ rsaModulusLength: 1024, seed: 11, signProviderDeliveries: true, ...o.emulator });
  await emu.listen();
  const c = emu.control;
  const ag = c.createAgency({ name: 'Agency' });
  c.createUser({ companyId: ag.id, type: 'agency' });
  const locationIds: string[] = [];
  for (let i = 0; i < (o.locations ?? 1); i++)
    locationIds.push(c.createLocation({ companyId: ag.id, name: `Store ${i}`, email: `store${i}@example.com` }).id);
  const app = c.createApp({
    name: 'ghl-bridge',
    redirectUri: `${PUBLIC_URL}/oauth/callback`,
    scopes: SCOPES,
    conversationProvider: o.provider ?? { type: 'SMS', isCustom: true },
  });
  const env = {
    SANDBOX: 'false',
    GHL_CLIENT_ID: app.clientId,
    GHL_CLIENT_SECRET: app.clientSecret,
    GHL_API_BASE: emu.baseUrl,
    GHL_MARKETPLACE_BASE: emu.baseUrl,
    GHL_SCOPES: SCOPES,
    GHL_CONVERSATION_PROVIDER_ID: app.conversationProviderId!,
    PUBLIC_URL,
    TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
    GHL_RECONCILE_INTERVAL_MIN: '0',
    ADMIN_API_KEY: ADMIN,
  };
  return { emu, companyId: ag.id, locationIds, clientId: app.clientId, providerId: app.conversationProviderId!, env };
}

export type ProviderBridge = TestBridge & { provider: ProviderService; inbox: LoopbackInbox };

export async function startBridge(
  w: World,
  o: {
    env?: Record<string, string>;
    settings?: Partial<ProviderSettings>;
    confirmation?: Partial<ConfirmationSettings>;
    catchup?: Partial<CatchupSettings>;
    limits?: Partial<RateLimitOptions>;
    install?: boolean;
    log?: (config: Config) => Logger;
    /** Extra modules (e.g. the dashboard). */
    modules?: BridgeModule[];
  } = {},
): Promise<ProviderBridge> {
  const inbox = new LoopbackInbox(100_000);
  const b = await startTestBridge({
    modules: [
      webhooksModule({
        extraEd25519Keys: [w.emu.keys.ed25519PublicKeyPem],
        extraRsaKeys: [w.emu.keys.rsaPublicKeyPem],
      }),
      installationsModule({ now: () => w.emu.clock.now(), ...(o.limits ? { limits: o.limits } : {}) }),
      providerModule({
        loopbackInbox: inbox,
        settings: { retryBaseMs: 20, pollBaseMs: 50, ...o.settings },
        ...(o.confirmation ? { confirmation: o.confirmation } : {}),
        ...(o.catchup ? { catchup: o.catchup } : {}),
      }),
      ...(o.modules ?? []),
    ],
    env: { JOB_POLL_MS: '50', ...w.env, ...o.env },
    ...(o.log ? { log: o.log } : {}),
  });
  w.emu.control.updateApp(w.clientId, { providerDeliveryUrl: `${b.url}/webhooks/ghl/provider` });
  if (o.install !== false) for (const l of w.locationIds) await install(b.url, l);
  return Object.assign(b, { provider: b.ctx.services.get('provider'), inbox });
}

/** Drives the real install flow: bridge /oauth/install → emulator chooselocation → bridge callback. */
export async function install(bridgeUrl: string, locationId: string): Promise<void> {
  const r1 = await fetch(`${bridgeUrl}/oauth/install`, { redirect: 'manual' });
  if (r1.status !== 302) throw new Error(`install: expected 302, got ${r1.status}`);
  const choose = new URL(r1.headers.get('location')!);
  choose.searchParams.set('locationId', locationId);
  const r2 = await fetch(choose, { redirect: 'manual' });
  if (r2.status !== 302) throw new Error(`chooselocation: expected 302, got ${r2.status} ${await r2.text()}`);
  const cb = new URL(r2.headers.get('location')!);
  const r3 = await fetch(`${bridgeUrl}${cb.pathname}${cb.search}`, { redirect: 'manual' });
  if (r3.status >= 400) throw new Error(`callback: ${r3.status} ${await r3.text()}`);
}

export async function adminPut(bridgeUrl: string, locationId: string, body: unknown): Promise<Response> {
  return fetch(`${bridgeUrl}/admin/channels/${locationId}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Statuses a message went through in the emulator (GHL side), e.g. ['pending', 'delivered']. */
export function statusHistory(emu: Emulator, messageId: string): string[] {
  return emu.control.getMessage(messageId)?.statusHistory.map((s) => s.status) ?? [];
}

export function finalStatus(emu: Emulator, messageId: string): string | undefined {
  return emu.control.getMessage(messageId)?.status;
}

export const CAST_KEY = `cast_${'ab'.repeat(32)}`;
export const CAST_INBOUND_KEY = 'inbound-key-0123456789abcdef';
