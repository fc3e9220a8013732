import { describe, expect, it } from 'vitest';
import { cliEnv, cliRunner } from '../helpers/cli.js';
import { openTestStore, STORE } from '../helpers/store.js';

describe('ghl-bridge contacts (CLI)', () => {
  it('declares and shows logical fields, queues a refresh for the bridge, prints the sync status; rejects bad input', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the CLI process takes the embedded store
    const env = cliEnv(store.env, { PUBLIC_URL: 'https://bridge.example.com' });
    const { cli, fails } = cliRunner(env);
    try {
      const set = await cli(
        'contacts',
        'mapping',
        'set',
        '--location',
        'LOC1',
        '--field',
        'cadence_stage',
        '--type',
        'single_options',
        '--option',
        'new',
        '--option',
        'won',
        '--json',
      );
      const m = JSON.parse(set.stdout) as {
        fields: Array<{ logical: string; dataType: string; options: string[]; ghl: unknown }>;
      };
      expect(m.fields).toEqual([
        expect.objectContaining({
          logical: 'cadence_stage',
          dataType: 'SINGLE_OPTIONS',
          options: ['new', 'won'],
          ghl: null,
        }),
      ]);
      await cli(
        'contacts',
        'mapping',
        'set',
        '--location',
        'LOC1',
        '--field',
        'job_title',
        '--type',
        'TEXT',
        '--field-id',
        'abcDEF123',
      );
      const show = (await cli('contacts', 'mapping', 'show', '--location', 'LOC1')).stdout;
      expect(show).toMatch(/job_title\s+TEXT\s+→ abcDEF123 \(pinned\)/);
      expect(show).toMatch(
        /cadence_stage\s+SINGLE_OPTIONS\s+→ not in GHL \(key contact\.cadence_stage, name "Cadence Stage"\)/,
      );
      const refresh = (await cli('contacts', 'mapping', 'refresh', '--location', 'LOC1', '--create')).stdout;
      expect(refresh).toMatch(/^refresh of LOC1 queued \(job \d+\)/);
      expect((await cli('contacts', 'status')).stdout.trim()).toBe(
        'LOC1  not synced  last sync never  no batch finished  pending 0  mapped 0',
      );

      const badType = await fails('contacts', 'mapping', 'set', '--location', 'LOC1', '--field', 'x', '--type', 'BLOB');
      expect(badType.code).toBe(2);
      expect(badType.stderr).toMatch(/invalid --type: expected one of TEXT, LARGE_TEXT/);
      const badLoc = await fails('contacts', 'status', '--location', 'not a location!');
      expect(badLoc.code).toBe(2);
      expect(badLoc.stderr).toMatch(/invalid --location/);
    } finally {
      if (STORE === 'postgres') await store.close();
    }
  }, 120_000);
});
