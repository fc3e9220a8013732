import type { Command } from 'commander';
import { createEmulator, seedDemo, type EmulatorOptions } from '../../emulator/index.js';

interface EmulatorCliOptions {
  port: string;
  host: string;
  seed?: string;
  bridgeUrl?: string;
  redirectUri?: string;
  retryIntervalMs?: string;
  retryJitterMs?: string;
  maxRetries?: string;
  webhookTimeoutMs?: string;
  accessTokenTtlSec?: string;
  refreshTokenTtlSec?: string;
  /** A "burst/intervalMs/daily" spec, false for --no-rate-limit, undefined for GHL's limits. */
  rateLimit?: string | boolean;
  statusRefusalWindowMs?: string;
  deliveryUrl?: string;
  deliveryToken?: string;
  signProviderDeliveries?: boolean;
}

const LIFTED = { burst: 1_000_000_000, intervalMs: 1000, daily: 1_000_000_000 };

/** CLI flags → EmulatorOptions; throws naming the flag and what was expected. */
export function emulatorOptions(o: EmulatorCliOptions): EmulatorOptions {
  const n = (flag: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min)
      throw new Error(`invalid ${flag} ${v}: expected a whole number of at least ${min}`);
    return Number(v);
  };
  const out: EmulatorOptions = {};
  const set = <K extends keyof EmulatorOptions>(k: K, v: EmulatorOptions[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('seed', n('--seed', o.seed, 0));
  set('webhookRetryIntervalMs', n('--retry-interval-ms', o.retryIntervalMs, 0));
  set('webhookRetryJitterMs', n('--retry-jitter-ms', o.retryJitterMs, 0));
  set('webhookMaxRetries', n('--max-retries', o.maxRetries, 0));
  set('webhookTimeoutMs', n('--webhook-timeout-ms', o.webhookTimeoutMs, 1));
  set('accessTokenTtlSec', n('--access-token-ttl-sec', o.accessTokenTtlSec, 1));
  set('refreshTokenTtlSec', n('--refresh-token-ttl-sec', o.refreshTokenTtlSec, 1));
  set('statusRefusalWindowMs', n('--status-refusal-window-ms', o.statusRefusalWindowMs, 0));
  if (o.signProviderDeliveries) out.signProviderDeliveries = true;
  if (o.rateLimit === false) out.rateLimit = LIFTED;
  else if (typeof o.rateLimit === 'string') {
    const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(o.rateLimit);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[3]) < 1)
      throw new Error(`invalid --rate-limit ${o.rateLimit}: expected burst/intervalMs/daily, e.g. 100/10000/200000`);
    out.rateLimit = { burst: Number(m[1]), intervalMs: Number(m[2]), daily: Number(m[3]) };
  }
  return out;
}

/** `ghl-bridge emulator`: run the local GHL emulator standalone with a seeded demo agency, location and app. */
export function registerEmulatorCommand(program: Command): void {
  program
    .command('emulator')
    .description('run the local GoHighLevel emulator (OAuth, contacts, conversations, signed webhooks)')
    .option('--port <n>', 'port to listen on', '4010')
    .option('--host <h>', 'interface to bind', '127.0.0.1')
    .option('--seed <n>', 'seed for deterministic ids')
    .option('--bridge-url <url>', 'base URL of the bridge: sets the demo app webhook, delivery and redirect URLs')
    .option('--redirect-uri <uri>', 'OAuth redirect URI of the demo app (default <bridge-url>/oauth/callback)')
    .option('--retry-interval-ms <n>', 'interval between 429 webhook retries (default 600000)')
    .option('--retry-jitter-ms <n>', 'largest random jitter added to each retry interval (default 10% of the interval)')
    .option('--max-retries <n>', 'webhook retries after the first attempt (default 6)')
    .option('--webhook-timeout-ms <n>', 'webhook delivery timeout (default 10000)')
    .option('--access-token-ttl-sec <n>', 'access-token lifetime (default 86399)')
    .option('--refresh-token-ttl-sec <n>', 'refresh-token lifetime (default 31536000)')
    .option(
      '--rate-limit <burst/intervalMs/daily>',
      'per app and location: burst per interval and daily cap (default 100/10000/200000)',
    )
    .option('--no-rate-limit', 'lift the rate limits (load tests)')
    .option(
      '--delivery-url <url>',
      'the demo provider app Delivery URL, token included (`ghl-bridge provider delivery-url` prints it)',
    )
    .option(
      '--delivery-token <token>',
      "with --bridge-url: the Delivery URL becomes <bridge-url>/webhooks/ghl/provider/<token> (the bridge's PROVIDER_DELIVERY_TOKENS)",
    )
    .option('--sign-provider-deliveries', 'sign Delivery-URL calls (real GHL sends them unsigned)')
    .option(
      '--status-refusal-window-ms <n>',
      'refuse message status updates this long after a message is created (default 0)',
    )
    .action(async (o: EmulatorCliOptions) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        console.error(`invalid --port ${o.port}`);
        process.exitCode = 2;
        return;
      }
      let opts: EmulatorOptions;
      try {
        opts = emulatorOptions(o);
      } catch (e) {
        console.error((e as Error).message);
        process.exitCode = 2;
        return;
      }
      const emu = await createEmulator(opts);
      const base = await emu.listen({ port, host: o.host });
      const demo = seedDemo(emu, {
        ...(o.bridgeUrl ? { bridgeUrl: o.bridgeUrl.replace(/\/$/, '') } : {}),
        ...(o.redirectUri ? { redirectUri: o.redirectUri } : {}),
      });
      const deliveryUrl =
        o.deliveryUrl ??
        (o.bridgeUrl && o.deliveryToken
          ? `${o.bridgeUrl.replace(/\/$/, '')}/webhooks/ghl/provider/${encodeURIComponent(o.deliveryToken)}`
          : undefined);
      if (deliveryUrl) emu.control.updateApp(demo.clientId, { providerDeliveryUrl: deliveryUrl });
      else if (o.bridgeUrl && !o.signProviderDeliveries)
        console.error(
          "note: Delivery-URL calls are unsigned (as real GHL sends them), so the bridge refuses them without its token: pass --delivery-token (the bridge's PROVIDER_DELIVERY_TOKENS) or --delivery-url (`ghl-bridge provider delivery-url`)",
        );
      console.log(`GHL emulator listening on ${base}`);
      console.log(`  API base URL        ${base}   (use instead of https://services.leadconnectorhq.com)`);
      console.log(`  install page        ${demo.installUrl}`);
      console.log(`  token endpoint      ${base}/oauth/token`);
      console.log(`  signing keys        ${base}/_emulator/keys`);
      console.log(`  control API         ${base}/_emulator/state`);
      const rl = opts.rateLimit;
      console.log(`  access token TTL    ${opts.accessTokenTtlSec ?? 86_399} s`);
      console.log(
        `  rate limit          ${rl === LIFTED ? 'lifted' : rl ? `${rl.burst} / ${rl.intervalMs} ms, ${rl.daily} / day` : "GHL's (100 / 10 s, 200000 / day)"}`,
      );
      if (o.bridgeUrl)
        console.log(
          `  delivers to         ${o.bridgeUrl.replace(/\/$/, '')}/webhooks/ghl (app) and /webhooks/ghl/provider (conversation provider)`,
        );
      console.log('demo seed:');
      console.log(`  agency (companyId)  ${demo.companyId}`);
      console.log(`  location            ${demo.locationId}`);
      console.log(`  contact             ${demo.contactId}`);
      console.log(`  app clientId        ${demo.clientId}`);
      console.log(`  app clientSecret    ${demo.clientSecret}`);
      console.log(`  conversationProviderId ${demo.conversationProviderId}`);
      console.log(`  redirect URI        ${demo.redirectUri}`);
      console.log('Ed25519 public key (X-GHL-Signature):');
      console.log(emu.keys.ed25519PublicKeyPem.trim());
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        console.log(`${sig}: stopping emulator`);
        emu.close().then(
          () => process.exit(0),
          (e: unknown) => {
            console.error(e);
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}
