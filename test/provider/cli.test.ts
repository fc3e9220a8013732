import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { generateKeySpec } from '../../src/crypto/aes.js';
import { openTestStore, STORE } from '../helpers/store.js';

const run = promisify(execFile);

describe('ghl-bridge channels (CLI)', () => {
  it('sets, lists and shows a location channel with secrets masked, and rejects bad input clearly', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the CLI process takes the embedded store
    const env = { ...process.env, ...store.env, TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'), SANDBOX: 'true', LOG_LEVEL: 'silent' };
    const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env });
    try {
      const secret = 'cast_' + 'ab12'.repeat(16);
      await cli('channels', 'set', 'LOC1', '--kind', 'cast', '--api-key', secret, '--inbound-api-key', 'inbound-key-0123456789', '--region', 'PH');
      const list = await cli('channels', 'list');
      expect(list.stdout).toContain('LOC1');
      expect(list.stdout).toContain('cast');
      const show = await cli('channels', 'show', 'LOC1');
      expect(show.stdout).not.toContain(secret);
      expect(show.stdout).not.toContain('inbound-key-0123456789');
      expect(show.stdout).toMatch(/\*\*\*/);

      const bad = await cli('channels', 'set', 'LOC2', '--kind', 'http', '--url', 'not a url').then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/url/i);
    } finally {
      if (STORE === 'postgres') await store.close();
    }
  });
});
