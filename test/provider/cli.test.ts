import { describe, expect, it } from 'vitest';
import { cliEnv, cliRunner } from '../helpers/cli.js';
import { openTestStore, STORE } from '../helpers/store.js';

describe('ghl-bridge channels (CLI)', () => {
  it('sets, lists and shows a location channel with secrets masked, and rejects bad input clearly', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the CLI process takes the embedded store
    const env = cliEnv(store.env);
    const { cli } = cliRunner(env);
    try {
      const secret = 'cast_' + 'ab12'.repeat(16);
      await cli(
        'channels',
        'set',
        'LOC1',
        '--kind',
        'cast',
        '--api-key',
        secret,
        '--inbound-api-key',
        'inbound-key-0123456789',
        '--region',
        'PH',
      );
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

describe('ghl-bridge provider (CLI)', () => {
  it('prints the exact Delivery URL, rotates the token (old kept, then retired) and doctor shows the URL masked', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close();
    const { cli } = cliRunner(cliEnv(store.env, { PUBLIC_URL: 'https://bridge.example.com' }));
    const url = /^https:\/\/bridge\.example\.com\/webhooks\/ghl\/provider\/([A-Za-z0-9_-]{43})$/;
    try {
      const first = (await cli('provider', 'delivery-url')).stdout.trim();
      expect(first).toMatch(url);
      expect((await cli('provider', 'delivery-url')).stdout.trim()).toBe(first); // stable: generated once
      const token1 = url.exec(first)![1]!;
      const rotated = await cli('provider', 'rotate-token', '--overlap-hours', '0');
      const token2 = url.exec(rotated.stdout.trim())![1]!;
      expect(token2).not.toBe(token1);
      expect(rotated.stderr).toMatch(/previous token stays accepted until/);
      const listed = (await cli('provider', 'tokens')).stdout;
      expect(listed).toMatch(/current .*\n.*previous/s);
      expect(listed).not.toContain(token1);
      expect(listed).not.toContain(token2);
      expect((await cli('provider', 'retire-previous')).stdout).toMatch(/^1 previous token/);
      expect((await cli('provider', 'tokens')).stdout).not.toMatch(/previous/);
      const doctor = await cli('doctor').catch((e: { stdout: string }) => e);
      expect(doctor.stdout).toContain(
        `provider Delivery URL: https://bridge.example.com/webhooks/ghl/provider/${token2.slice(0, 4)}…`,
      );
      expect(doctor.stdout).not.toContain(token2);
      const bad = await cli('provider', 'rotate-token', '--overlap-hours', 'soon').then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--overlap-hours/);
    } finally {
      if (STORE === 'postgres') await store.close();
    }
    // Nine CLI processes, each loading tsx and (on PGlite) opening the embedded store: ~4 s apiece on a loaded
    // 2-core machine, which crossed 60 s once when other suites ran beside this one.
  }, 180_000);
});
