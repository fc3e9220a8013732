import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BridgeModule, ServiceRegistry } from '../app.js';
import type { Config } from '../infra/config/index.js';
import { createEmulator, seedDemo, type DemoSeed, type Emulator } from '../emulator/index.js';
import type { Logger } from '../infra/log/logger.js';
import { startChatDemo, type ChatDemo } from './chat.js';

/**
 * Sandbox mode (no GHL credentials): runs the built-in GHL emulator next to the bridge, seeds a
 * demo agency / sub-account / contact and a conversation-provider app, points the bridge at it,
 * installs the app through the real OAuth flow once the bridge listens, and gives the demo
 * location a loopback channel that auto-replies — so one `npm start` shows a full round trip.
 */
export interface Sandbox {
  emulator: Emulator;
  seed: DemoSeed;
  /** The bridge's configuration, with the emulator's URLs and the demo app's credentials. */
  config: Config;
  /** Extra webhook verification keys (the emulator signs with its own keys). */
  webhookKeys: { ed25519: string[]; rsa: string[] };
  /** Runs after the bridge listens: registers its URLs with the emulator and installs the app. */
  afterListen(bridgeUrl: string, services: ServiceRegistry): Promise<string[]>;
  close(): Promise<void>;
}

export async function startSandbox(config: Config, log: Logger): Promise<Sandbox> {
  // A fixed seed keeps the demo's ids (location, client id) stable across restarts, so the
  // embedded store's rows keep matching the emulator's.
  const emulator = await createEmulator({ seed: 20261121, webhookRetryIntervalMs: 5_000 });
  const emuUrl = await emulator.listen({ port: config.EMULATOR_PORT, host: '127.0.0.1' });
  const seed = seedDemo(emulator);
  const adminKey = config.ADMIN_API_KEY ?? sandboxAdminKey(config.DATA_DIR);
  const bridgeConfig: Config = {
    ...config,
    GHL_CLIENT_ID: seed.clientId,
    GHL_CLIENT_SECRET: seed.clientSecret,
    GHL_API_BASE: emuUrl,
    GHL_MARKETPLACE_BASE: emuUrl,
    GHL_CONVERSATION_PROVIDER_ID: seed.conversationProviderId,
    ADMIN_API_KEY: adminKey,
    secretValues: [...config.secretValues, seed.clientSecret, adminKey],
  };
  log.info({ emulator: emuUrl, locationId: seed.locationId }, 'sandbox: GHL emulator started');
  let chatDemo: ChatDemo | undefined;

  return {
    emulator,
    seed,
    config: bridgeConfig,
    webhookKeys: { ed25519: [emulator.keys.ed25519PublicKeyPem], rsa: [emulator.keys.rsaPublicKeyPem] },
    async afterListen(bridgeUrl, services) {
      // As in production: the emulator calls the Delivery URL unsigned, with the bridge's secret token in the path, and
      // the bridge waits for the signed OutboundMessage event (the app webhook URL below) before it sends.
      const provider = services.find('provider');
      const token = provider ? await provider.tokens.current() : undefined;
      emulator.control.updateApp(seed.clientId, {
        webhookUrl: `${bridgeUrl}/webhooks/ghl`,
        providerDeliveryUrl: token
          ? `${bridgeUrl}/webhooks/ghl/provider/${token}`
          : `${bridgeUrl}/webhooks/ghl/provider`,
        // The bridge builds its redirect URI from PUBLIC_URL; webhooks go to where it listens.
        redirectUri: `${config.publicUrl}/oauth/callback`,
      });
      await installThroughOAuth(bridgeUrl, seed.locationId);
      let channelNote = '  (no conversation-provider module loaded: outbound messages are stored but not relayed)';
      if (provider) {
        await provider.configureChannel(seed.locationId, { kind: 'loopback', autoReply: true });
        channelNote = `  channel: loopback with auto-reply for location ${seed.locationId}`;
      }
      chatDemo = await startChatDemo({
        emulator,
        seed,
        emuUrl,
        bridgeUrl,
        services,
        config: bridgeConfig,
        log,
        install: (locationId) => installThroughOAuth(bridgeUrl, locationId),
      }).catch((e: unknown) => {
        log.warn({ err: e }, 'sandbox: the chat round-trip demo could not be set up');
        return undefined;
      });
      const send = `curl -s -X POST ${emuUrl}/_emulator/send-message -H 'content-type: application/json' -d '{"locationId":"${seed.locationId}","contactId":"${seed.contactId}","type":"SMS","message":"Hello from GHL"}'`;
      return [
        '',
        '  Sandbox mode: no GHL credentials set, so a local GHL emulator is running.',
        `  emulator:  ${emuUrl}   (GHL API + /_emulator control API)`,
        `  installed: demo location ${seed.locationId} (agency ${seed.companyId}) via OAuth`,
        channelNote,
        token
          ? `  delivery:  unsigned Delivery-URL calls to ${bridgeUrl}/webhooks/ghl/provider/${token.slice(0, 4)}…, confirmed by the signed OutboundMessage event (as with real GHL)`
          : '',
        config.ADMIN_API_KEY
          ? '  admin API: Authorization: Bearer $ADMIN_API_KEY'
          : `  admin API: Authorization: Bearer $(cat ${adminKeyFile(config.DATA_DIR)})`,
        '',
        '  Try it — send an SMS as a GHL user, then watch the conversation:',
        `    ${send}`,
        `    curl -s '${emuUrl}/_emulator/messages?locationId=${seed.locationId}'`,
        '  The message goes out through the loopback channel, is marked delivered, and the',
        '  auto-reply appears as an inbound message in the same conversation.',
        ...(chatDemo?.lines ?? []),
        '',
      ];
    },
    close: async () => {
      await chatDemo?.close();
      await emulator.close();
    },
  };
}

/** Drives the real install flow: /oauth/install → chooselocation (location picked) → /oauth/callback. */
async function installThroughOAuth(bridgeUrl: string, locationId: string): Promise<void> {
  const start = await fetch(`${bridgeUrl}/oauth/install`, { redirect: 'manual' });
  const choose = start.headers.get('location');
  if (start.status !== 302 || !choose) throw new Error(`sandbox install: /oauth/install answered ${start.status}`);
  const picked = new URL(choose);
  picked.searchParams.set('locationId', locationId);
  const back = await fetch(picked, { redirect: 'manual' });
  const callback = back.headers.get('location');
  if (!callback) throw new Error(`sandbox install: chooselocation answered ${back.status}`);
  const done = await fetch(callback, { redirect: 'manual' });
  if (done.status >= 400) throw new Error(`sandbox install: callback answered ${done.status}: ${await done.text()}`);
}

declare module '../app.js' {
  interface Services {
    sandbox: Sandbox;
  }
}

/** Module that publishes the sandbox in ctx.services (for diagnostics and tests). */
export function sandboxModule(sandbox: Sandbox): BridgeModule {
  return {
    name: 'sandbox',
    init(ctx) {
      ctx.services.provide('sandbox', sandbox);
    },
  };
}

function adminKeyFile(dataDir: string): string {
  return join(resolve(dataDir), 'sandbox-admin-key');
}

/** Sandbox only: an admin key generated once and kept in the data dir (never printed or logged). */
function sandboxAdminKey(dataDir: string): string {
  if (dataDir.startsWith('memory://')) return randomBytes(24).toString('base64url');
  const file = adminKeyFile(dataDir);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(resolve(dataDir), { recursive: true });
  const key = randomBytes(24).toString('base64url');
  writeFileSync(file, key + '\n', { mode: 0o600 });
  return key;
}
