import type { Command } from 'commander';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { createLogger } from '../../infra/log/logger.js';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { allMigrations } from '../../modules.js';
import {
  ChannelValidationError,
  configureChannel,
  parseChannelConfig,
  deleteChannel,
  getChannelView,
  listChannels,
  type ChannelView,
} from '../../capabilities/provider/index.js';
import { configOrExit, fail, openStore } from '../common.js';

interface SetOptions {
  kind: string;
  url?: string;
  signingSecret?: string;
  inboundSecret?: string;
  timeoutMs?: string;
  defaultInboundChannel?: string;
  apiKey?: string;
  baseUrl?: string;
  senderId?: string;
  inboundApiKey?: string;
  maxLength?: string;
  numberFormat?: string;
  autoReply?: string;
  receipt?: string;
  region?: string;
  providerId?: string;
  emailCustom?: boolean;
  disabled?: boolean;
  json?: boolean;
}

function buildConfig(o: SetOptions): Record<string, unknown> {
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const pick = (x: Record<string, unknown>) => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined));
  switch (o.kind) {
    case 'http':
      return pick({
        kind: 'http',
        url: o.url,
        signingSecret: o.signingSecret,
        inboundSecret: o.inboundSecret,
        timeoutMs: num(o.timeoutMs),
        defaultInboundChannel: o.defaultInboundChannel,
      });
    case 'cast':
      return pick({
        kind: 'cast',
        apiKey: o.apiKey,
        baseUrl: o.baseUrl,
        senderId: o.senderId,
        inboundApiKey: o.inboundApiKey,
        maxLength: num(o.maxLength),
        numberFormat: o.numberFormat,
        timeoutMs: num(o.timeoutMs),
      });
    case 'loopback':
      return pick({
        kind: 'loopback',
        autoReply:
          o.autoReply === undefined
            ? undefined
            : o.autoReply === 'true'
              ? true
              : o.autoReply === 'false'
                ? false
                : o.autoReply,
        receipt: o.receipt,
      });
    default:
      fail(new Error('--kind must be http, cast or loopback'));
  }
}

function print(v: ChannelView, publicUrl: string, json?: boolean): void {
  const inboundUrl = `${publicUrl}/channels/${encodeURIComponent(v.locationId)}/inbound`;
  if (json) {
    console.log(JSON.stringify({ ...v, inboundUrl }));
    return;
  }
  console.log(
    `${v.locationId}\t${v.kind}\t${v.enabled ? 'enabled' : 'disabled'}\tregion=${v.defaultRegion}\tupdated=${v.updatedAt.toISOString()}`,
  );
  console.log(`  inbound URL: ${inboundUrl}`);
  if (v.conversationProviderId) console.log(`  conversationProviderId: ${v.conversationProviderId}`);
  if (v.emailInboundType !== 'Email') console.log(`  inbound e-mail type: ${v.emailInboundType}`);
  for (const [k, val] of Object.entries(v.config))
    if (k !== 'kind') console.log(`  ${k}: ${typeof val === 'string' ? val : JSON.stringify(val)}`);
}

/** `ghl-bridge channels set|list|show|delete`: per-location channel configuration (secrets encrypted, shown masked). */
export function registerChannelsCommand(program: Command): void {
  const channels = program.command('channels').description('configure the messaging channel of each GHL location');
  channels
    .command('set')
    .description('create or replace the channel of a location')
    .argument('<locationId>', 'GHL location (sub-account) id')
    .requiredOption('--kind <kind>', 'http | cast | loopback')
    .option('--url <url>', 'http: where outbound messages are POSTed')
    .option('--signing-secret <whsec>', 'http: Standard Webhooks secret signing what we send')
    .option('--inbound-secret <whsec>', 'http: secret verifying what the external system sends')
    .option('--default-inbound-channel <type>', 'http: SMS | Email | Custom')
    .option('--api-key <key>', 'cast: API key (cast_…)')
    .option('--base-url <url>', 'cast: API base URL (default https://api.cast.ph)')
    .option('--sender-id <id>', 'cast: approved sender id')
    .option('--inbound-api-key <key>', 'cast: key the SIM gateway presents on inbound POSTs (≥16 chars)')
    .option('--max-length <n>', 'cast: longest message in characters (default 450)')
    .option('--number-format <f>', 'cast: local | e164')
    .option('--timeout-ms <ms>', 'http/cast: request timeout')
    .option('--auto-reply <text|true|false>', 'loopback: answer every message')
    .option('--receipt <r>', 'loopback: delivered | pending | failed')
    .option('--region <CC>', 'default region for national phone numbers (ISO code)', 'US')
    .option('--provider-id <id>', 'conversationProviderId for this location (default GHL_CONVERSATION_PROVIDER_ID)')
    .option('--email-custom', 'the app is an extra (custom) Email provider: add inbound e-mail as type Custom')
    .option('--disabled', 'store but do not use')
    .option('--json', 'print JSON')
    .action(async (locationId: string, o: SetOptions) => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        await migrateToLatest(store.db, store.schema, await allMigrations(config));
        const ring = loadKeyRing(config, createLogger({ level: 'silent' }));
        const v = await configureChannel(store.db, ring, locationId, parseChannelConfig(buildConfig(o)), {
          defaultRegion: o.region ?? 'US',
          conversationProviderId: o.providerId ?? null,
          emailInboundType: o.emailCustom ? 'Custom' : 'Email',
          enabled: !o.disabled,
        });
        print(v, config.publicUrl, o.json);
      } catch (e) {
        if (e instanceof ChannelValidationError) fail(e);
        throw e;
      } finally {
        await store.close();
      }
    });
  channels
    .command('list')
    .description('list configured channels (secrets masked)')
    .option('--json', 'print JSON lines')
    .action(async (o: { json?: boolean }) => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        const ring = loadKeyRing(config, createLogger({ level: 'silent' }));
        const rows = await listChannels(store.db, ring);
        if (!rows.length && !o.json) console.log('no channels configured');
        for (const v of rows) print(v, config.publicUrl, o.json);
      } finally {
        await store.close();
      }
    });
  channels
    .command('show')
    .description('show the channel of a location (secrets masked)')
    .argument('<locationId>')
    .option('--json', 'print JSON')
    .action(async (locationId: string, o: { json?: boolean }) => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        const ring = loadKeyRing(config, createLogger({ level: 'silent' }));
        const v = await getChannelView(store.db, ring, locationId);
        if (!v) fail(new Error(`no channel configured for location ${locationId}`));
        print(v, config.publicUrl, o.json);
      } finally {
        await store.close();
      }
    });
  channels
    .command('delete')
    .description('remove the channel of a location (outbound messages then fail with CHANNEL_NOT_CONFIGURED)')
    .argument('<locationId>')
    .action(async (locationId: string) => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        console.log(
          (await deleteChannel(store.db, locationId)) ? 'deleted' : 'no channel configured for this location',
        );
      } finally {
        await store.close();
      }
    });
}
