import type { BridgeModule } from '../../src/app.js';
import { apiKeysModule } from '../../src/platform/apikeys/index.js';
import { chatModule, type ChatModuleOptions } from '../../src/capabilities/chat/index.js';
import { startFakeReceiver, type FakeReceiver } from '../fakes/http-receiver.js';
import { SCOPES, startBridge, startWorld, type ProviderBridge, type World } from '../provider/harness.js';

export const CHAT_SCOPES = `${SCOPES} locations/customFields.readonly locations/customFields.write`;
export const SIGNING = `whsec_${Buffer.from('chat-signing-secret-0123456789abcdef').toString('base64')}`;

export interface ChatWorld {
  w: World;
  b: ProviderBridge;
  rx: FakeReceiver;
  /** Authorization header value for the chat API of these locations. */
  auth: string;
  close(): Promise<void>;
}

/** Emulator + bridge (webhooks, installations, provider, chat) + the chat product's receiver on the HTTP channel. */
export async function startChat(
  o: {
    locations?: number;
    chat?: ChatModuleOptions;
    env?: Record<string, string>;
    appEvents?: boolean;
    /** GHL's per-location burst per 10 s, in the emulator and the bridge's limiter (default GHL's 100). */
    burst?: number;
    /** Extra modules (e.g. events). */
    modules?: BridgeModule[];
  } = {},
): Promise<ChatWorld> {
  const w = await startWorld({
    locations: o.locations ?? 1,
    ...(o.burst ? { emulator: { rateLimit: { burst: o.burst, intervalMs: 10_000, daily: 10_000_000 } } } : {}),
  });
  w.emu.control.updateApp(w.clientId, { scopes: CHAT_SCOPES });
  const rx = await startFakeReceiver(SIGNING);
  const b = await startBridge(w, {
    env: {
      GHL_SCOPES: CHAT_SCOPES,
      PROVIDER_CATCHUP_INTERVAL_MS: '0',
      CHAT_RECONCILE_INTERVAL_MS: '0',
      ...o.env,
    },
    modules: [apiKeysModule(), chatModule(o.chat), ...(o.modules ?? [])],
    ...(o.burst ? { limits: { burst: o.burst, intervalMs: 10_000, daily: 10_000_000 } } : {}),
  });
  if (o.appEvents !== false) w.emu.control.updateApp(w.clientId, { webhookUrl: `${b.url}/webhooks/ghl` });
  for (const loc of w.locationIds)
    await b.provider.configureChannel(loc, { kind: 'http', url: rx.url, signingSecret: SIGNING, timeoutMs: 5000 });
  const { key } = await b.ctx.services.get('apiKeys').create({ name: 'chat tests', locationIds: w.locationIds });
  const auth = `Bearer ${key}`;
  return {
    w,
    b,
    rx,
    auth,
    async close() {
      await b.close();
      await w.emu.close();
      await rx.close();
    },
  };
}

export function post(cw: ChatWorld, loc: string, path: string, body: unknown, auth = cw.auth): Promise<Response> {
  return fetch(`${cw.b.url}/v1/locations/${loc}/chat/${path}`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export function chatMessage(
  id: string,
  o: { direction?: 'inbound' | 'outbound'; text?: string; sentAt?: string } = {},
): Record<string, unknown> {
  return {
    externalId: id,
    direction: o.direction ?? 'inbound',
    text: o.text ?? `text of ${id}`,
    sentAt: o.sentAt ?? new Date().toISOString(),
    author: { id: 'agent-1', name: 'Agent' },
  };
}

/** The bridge's relayed replies (HTTP channel deliveries) with their body. */
export function replies(
  rx: FakeReceiver,
): Array<{ messageId: string; chat?: { conversationId: string; clientId: string } }> {
  return rx.received.map((d) => d.body as { messageId: string; chat?: { conversationId: string; clientId: string } });
}
