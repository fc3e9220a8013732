import type { Command } from 'commander';
import { pendingMigrations } from '../../infra/db/migrations/index.js';
import { allMigrations } from '../../modules.js';
import { countByState } from '../../infra/queue/index.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { createLogger } from '../../infra/log/logger.js';
import { deliveryUrl, DeliveryTokens, maskToken } from '../../capabilities/provider/delivery-tokens.js';
import { configOrExit, openStore } from '../common.js';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check configuration, database and queue, and print what is wrong')
    .action(async () => {
      const config = configOrExit();
      console.log(
        `configuration: ok (${config.sandbox ? 'sandbox mode, built-in emulator' : `GHL app ${config.GHL_CLIENT_ID}`})`,
      );
      console.log(
        `store: ${config.DATABASE_URL ? `PostgreSQL, schema ${config.DATABASE_SCHEMA}` : `embedded PGlite in ${config.DATA_DIR}`}`,
      );
      const store = await openStore(config);
      let problems = 0;
      try {
        await store.ping();
        const pending = await pendingMigrations(store.db, store.schema, await allMigrations(config));
        if (pending.length) {
          problems++;
          console.log(`migrations: ${pending.length} pending (${pending.join(', ')}); run \`ghl-bridge migrate\``);
        } else console.log('migrations: up to date');
        if (!pending.includes('0001_queue')) {
          const counts = await countByState(store.db);
          console.log(
            `jobs: ${Object.entries(counts)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`,
          );
          if (counts.dead > 0)
            console.log(
              '  dead jobs: inspect with `ghl-bridge jobs list --dead`, retry with `ghl-bridge jobs retry --all-dead`',
            );
        }
        if (!pending.includes('0005_provider_confirmation')) {
          const t = new DeliveryTokens(
            store.db,
            loadKeyRing(config, createLogger({ level: 'warn' })),
            config.PROVIDER_DELIVERY_TOKENS,
            0,
          );
          const l = await t.list().catch(() => undefined);
          if (l) {
            console.log(
              `provider Delivery URL: ${deliveryUrl(config.publicUrl, maskToken(await t.current()))}  (token masked; \`ghl-bridge provider delivery-url\` prints it)`,
            );
            console.log(
              `  tokens accepted: ${l.tokens.length} (${l.source === 'env' ? 'PROVIDER_DELIVERY_TOKENS' : 'stored'}); confirmation: ${config.PROVIDER_CONFIRMATION}`,
            );
          } else
            console.log(
              'provider Delivery URL: no token yet (created at first start, or by `ghl-bridge provider delivery-url`)',
            );
        }
      } catch (e) {
        problems++;
        console.log(`database: ${(e as Error).message}`);
      } finally {
        await store.close();
      }
      process.exitCode = problems ? 1 : 0;
    });
}
