import type { Command } from 'commander';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { generateKeySpec } from '../../infra/crypto/aes.js';
import { rotateTokenKeys } from '../../platform/installations/vault.js';
import { rotateDeliveryTokenKeys } from '../../capabilities/provider/delivery-tokens.js';
import { rotateTriggerKeys } from '../../capabilities/pipelines/triggers.js';
import { createLogger } from '../../infra/log/logger.js';
import { configOrExit, fail, openStore } from '../common.js';

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('encryption keys for tokens at rest (TOKEN_ENCRYPTION_KEYS)');
  keys
    .command('generate')
    .description('print a new key entry to put first in TOKEN_ENCRYPTION_KEYS')
    .option('--id <id>', 'key id', `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`)
    .action((o: { id: string }) => {
      console.log(generateKeySpec(o.id));
    });
  keys
    .command('rotate')
    .description(
      're-encrypt every stored token with the first key of TOKEN_ENCRYPTION_KEYS (the others must still be listed)',
    )
    .action(async () => {
      const config = configOrExit();
      let ring;
      try {
        ring = loadKeyRing(config, createLogger({ level: 'warn' }));
      } catch (e) {
        fail(e);
      }
      const store = await openStore(config);
      try {
        const r = await rotateTokenKeys(store.db, ring);
        console.log(
          `${r.rotated} installation(s) re-encrypted with key ${ring.primaryId}; ${r.current} already current; ${r.total} total`,
        );
        const d = await rotateDeliveryTokenKeys(store.db, ring).catch(() => 0);
        if (d) console.log(`${d} Delivery-URL token(s) re-encrypted`);
        const t = await rotateTriggerKeys(store.db, ring).catch(() => 0);
        if (t) console.log(`${t} workflow trigger URL(s) re-encrypted`);
        if (ring.keys.size > 1)
          console.log(
            'Once every replica runs with the new first key, older keys can be removed from TOKEN_ENCRYPTION_KEYS.',
          );
      } catch (e) {
        fail(e);
      } finally {
        await store.close();
      }
    });
}
