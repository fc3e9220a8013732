import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { registerSecret } from '../log/logger.js';
import { generateKeySpec, parseKeyRing, type KeyRing } from './aes.js';

let ephemeral: string | undefined;
/** Sandbox rings by data dir: every module of a bridge gets the same ring, announced once. */
const sandboxRings = new Map<string, KeyRing>();

/**
 * The key ring from TOKEN_ENCRYPTION_KEYS. Sandbox mode may run without it: a key is generated once
 * and kept in DATA_DIR/sandbox-token-key (or in memory for a memory:// store) — never outside sandbox,
 * where config validation already requires the variable.
 */
export function loadKeyRing(config: Config, log: Logger, dataDir?: string): KeyRing {
  if (config.TOKEN_ENCRYPTION_KEYS) return parseKeyRing(config.TOKEN_ENCRYPTION_KEYS);
  if (!config.sandbox) throw new Error('TOKEN_ENCRYPTION_KEYS is required outside sandbox mode');
  const dir = dataDir ?? config.DATA_DIR;
  const memoKey = config.DATABASE_URL || dir.startsWith('memory://') ? 'memory://' : resolve(dir);
  const known = sandboxRings.get(memoKey);
  if (known) return known;
  let spec: string;
  if (memoKey === 'memory://') {
    ephemeral ??= generateKeySpec('sandbox');
    spec = ephemeral;
    log.warn('sandbox: TOKEN_ENCRYPTION_KEYS unset; tokens are encrypted with a key that lives only in this process');
  } else {
    const file = join(resolve(dir), 'sandbox-token-key');
    if (!existsSync(file)) {
      mkdirSync(resolve(dir), { recursive: true });
      writeFileSync(file, generateKeySpec('sandbox') + '\n', { mode: 0o600 });
      chmodSync(file, 0o600);
    }
    spec = readFileSync(file, 'utf8').trim();
    log.warn(
      { file },
      'sandbox: TOKEN_ENCRYPTION_KEYS unset; using the generated key in the data dir (set the variable for real installs)',
    );
  }
  for (const p of spec.split(',')) registerSecret(p.split(':')[1]);
  const ring = parseKeyRing(spec);
  sandboxRings.set(memoKey, ring);
  return ring;
}
