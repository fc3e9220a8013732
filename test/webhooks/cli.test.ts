import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/infra/db/index.js';
import { DISPATCH_JOB } from '../../src/platform/webhooks/index.js';
import { openTestStore, STORE } from '../helpers/store.js';
import '../../src/platform/webhooks/tables.js';

const run = promisify(execFile);

describe('ghl-bridge webhooks CLI', () => {
  it('lists events and replays dead ones (status back to received, a dispatch job queued)', async () => {
    const store = await openTestStore({ onDisk: true });
    const env = { ...process.env, ...store.env, LOG_LEVEL: 'silent' };
    const [dead, done] = await store.db
      .insertInto('webhook_events')
      .values([
        {
          source: 'app',
          dedupe_key: 'w-dead',
          type: 'ContactCreate',
          location_id: 'loc_1',
          company_id: null,
          webhook_id: 'w-dead',
          ordering_key: 'wh:loc_1:c1',
          event_at: null,
          payload: '{"type":"ContactCreate","locationId":"loc_1"}',
          raw: null,
          signature: 'ed25519',
          status: 'dead',
          reason: 'handler failed',
          processed_at: null,
        },
        {
          source: 'app',
          dedupe_key: 'w-ok',
          type: 'NoteCreate',
          location_id: 'loc_1',
          company_id: null,
          webhook_id: 'w-ok',
          ordering_key: null,
          event_at: null,
          payload: '{"type":"NoteCreate"}',
          raw: null,
          signature: 'ed25519',
          status: 'dispatched',
          reason: null,
          processed_at: new Date(),
        },
      ])
      .returning('id')
      .execute();
    // The embedded store allows one process at a time: hand it to the CLI.
    if (STORE === 'pglite') await store.close();
    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'webhooks', ...args], { env });

    const list = await cli('list', '--dead', '--json');
    expect(
      list.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: number }).id),
    ).toEqual([dead!.id]);
    const replay = await cli('replay', '--dead');
    expect(replay.stdout).toContain(`1 event(s) queued for dispatch again: ${dead!.id}`);
    await expect(cli('replay')).rejects.toMatchObject({ code: 1 });

    const check =
      STORE === 'pglite' ? await openDatabase({ schema: store.schema, dataDir: store.env.DATA_DIR! }) : store;
    try {
      const rows = await check.db.selectFrom('webhook_events').select(['id', 'status']).orderBy('id').execute();
      expect(rows).toEqual([
        { id: dead!.id, status: 'received' },
        { id: done!.id, status: 'dispatched' },
      ]);
      const jobs = await check.db.selectFrom('bridge_jobs').select(['kind', 'payload', 'ordering_key']).execute();
      expect(jobs).toEqual([
        { kind: DISPATCH_JOB, payload: { eventId: dead!.id, replay: true }, ordering_key: 'wh:loc_1:c1' },
      ]);
    } finally {
      await check.close();
    }
  });
});
