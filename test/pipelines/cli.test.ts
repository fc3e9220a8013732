import { describe, expect, it } from 'vitest';
import { cliEnv, cliRunner } from '../helpers/cli.js';
import { openTestStore, STORE } from '../helpers/store.js';

describe('ghl-bridge triggers (CLI)', () => {
  it('sets and lists a trigger (URL masked); a URL that is not a GHL hook is refused naming url', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the CLI process takes the embedded store
    const env = cliEnv(store.env);
    const { cli } = cliRunner(env);
    const secret = '6b1f0c2e-9a4d-4e7b-8f31-2c5d7a9e4b10';
    const url = `https://services.leadconnectorhq.com/hooks/LOC1/webhook-trigger/${secret}`;
    try {
      const set = await cli('triggers', 'set', 'LOC1', 'order-paid', '--url', url);
      expect(set.stdout).toContain('order-paid');
      expect(set.stdout).not.toContain(secret);
      const list = (await cli('triggers', 'list')).stdout;
      expect(list).toMatch(
        /LOC1\torder-paid\thttps:\/\/services\.leadconnectorhq\.com\/hooks\/LOC1\/webhook-trigger\/\*\*\*\*4b10/,
      );
      expect(list).not.toContain(secret);

      const bad = await cli('triggers', 'set', 'LOC1', 'x', '--url', 'https://example.com/hook').then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/url: expected GHL's workflow inbound-webhook path/);
    } finally {
      if (STORE === 'postgres') await store.close();
    }
  }, 150_000);
});
