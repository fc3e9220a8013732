import { describe, expect, it } from 'vitest';
import { cliEnv, cliRunner } from '../helpers/cli.js';
import { openTestStore, STORE } from '../helpers/store.js';

describe('ghl-bridge calls (CLI)', () => {
  it('prints the workflow webhook URL of a location, the same one again, a new one after rotate-token; rejects bad input before opening the store', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the CLI process takes the embedded store
    const env = cliEnv(store.env, { PUBLIC_URL: 'https://bridge.example.com' });
    const { cli, fails } = cliRunner(env);
    try {
      const a = (await cli('calls', 'workflow-url', '--location', 'LOC1', '--integration', 'internal')).stdout.trim();
      expect(a).toMatch(/^https:\/\/bridge\.example\.com\/webhooks\/workflow\/wf_[A-Za-z0-9_-]{43}$/);
      expect((await cli('calls', 'workflow-url', '--location', 'LOC1')).stdout.trim()).toBe(a);
      const rotated = await cli('calls', 'rotate-token', '--location', 'LOC1');
      expect(rotated.stdout.trim()).toMatch(/\/webhooks\/workflow\/wf_/);
      expect(rotated.stdout.trim()).not.toBe(a);
      expect(rotated.stderr).toMatch(/refused from now on/);
      const bad = await fails('calls', 'workflow-url', '--location', 'not a location!');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/invalid --location/);
      const badType = await fails('calls', 'workflow-url', '--location', 'LOC1', '--integration', 'partner');
      expect(badType.code).toBe(2);
      expect(badType.stderr).toMatch(/invalid --integration: expected internal or client/);
    } finally {
      if (STORE === 'postgres') await store.close();
    }
  }, 120_000);
});
