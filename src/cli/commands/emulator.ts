import type { Command } from 'commander';
import { createEmulator, seedDemo } from '../../emulator/index.js';

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
    .option('--delivery-url <url>', 'the demo provider app Delivery URL, token included (`ghl-bridge provider delivery-url` prints it)')
    .option('--sign-provider-deliveries', 'sign Delivery-URL calls (real GHL sends them unsigned)')
    .action(async (o: { port: string; host: string; seed?: string; bridgeUrl?: string; redirectUri?: string; retryIntervalMs?: string; deliveryUrl?: string; signProviderDeliveries?: boolean }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        console.error(`invalid --port ${o.port}`);
        process.exitCode = 2;
        return;
      }
      const emu = await createEmulator({
        ...(o.seed !== undefined ? { seed: Number(o.seed) } : {}),
        ...(o.retryIntervalMs !== undefined ? { webhookRetryIntervalMs: Number(o.retryIntervalMs) } : {}),
        ...(o.signProviderDeliveries ? { signProviderDeliveries: true } : {}),
      });
      const base = await emu.listen({ port, host: o.host });
      const demo = seedDemo(emu, {
        ...(o.bridgeUrl ? { bridgeUrl: o.bridgeUrl.replace(/\/$/, '') } : {}),
        ...(o.redirectUri ? { redirectUri: o.redirectUri } : {}),
      });
      if (o.deliveryUrl) emu.control.updateApp(demo.clientId, { providerDeliveryUrl: o.deliveryUrl });
      console.log(`GHL emulator listening on ${base}`);
      console.log(`  API base URL        ${base}   (use instead of https://services.leadconnectorhq.com)`);
      console.log(`  install page        ${demo.installUrl}`);
      console.log(`  token endpoint      ${base}/oauth/token`);
      console.log(`  signing keys        ${base}/_emulator/keys`);
      console.log(`  control API         ${base}/_emulator/state`);
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
