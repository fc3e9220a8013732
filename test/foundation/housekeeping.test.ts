import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import { deleteInBatches } from '../../src/infra/db/batches.js';
import { providerModule, pruneMessages } from '../../src/capabilities/provider/index.js';
import { pruneEvents, webhooksModule } from '../../src/platform/webhooks/index.js';
import { startTestBridge, STORE, type TestBridge } from '../helpers/store.js';

let b: TestBridge | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

const start = (env: Record<string, string> = {}) =>
  startTestBridge({
    modules: [webhooksModule(), providerModule()],
    env: { TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'), ...env },
  });

type Db = TestBridge['ctx']['db'];

/** Events with the given status, received `daysAgo` days ago; returns their dedupe keys. */
async function events(
  db: Db,
  status: 'received' | 'dispatched' | 'skipped' | 'dead' | 'unknown_type',
  daysAgo: number,
  n = 1,
): Promise<string[]> {
  const keys = Array.from({ length: n }, (_, i) => `${status}-${daysAgo}-${i}-${Math.random().toString(36).slice(2)}`);
  await db
    .insertInto('webhook_events')
    .values(
      keys.map((k) => ({
        source: 'app' as const,
        dedupe_key: k,
        type: 'ContactCreate',
        payload: '{}',
        signature: 'ed25519',
        status,
        received_at: sql<Date>`now() - make_interval(days => ${daysAgo})`,
      })),
    )
    .execute();
  return keys;
}

async function outbound(db: Db, id: string, state: 'sending' | 'done' | 'failed' | 'status_pending', daysAgo: number) {
  await db
    .insertInto('provider_outbound')
    .values({
      message_id: id,
      location_id: 'loc1',
      contact_id: 'c1',
      channel: 'SMS',
      payload: '{}',
      state,
      updated_at: sql<Date>`now() - make_interval(days => ${daysAgo})`,
    })
    .execute();
}

async function inbound(db: Db, id: string, state: 'received' | 'done' | 'failed', daysAgo: number) {
  await db
    .insertInto('provider_inbound')
    .values({
      location_id: 'loc1',
      channel_message_id: id,
      address: '+15550001111',
      message: '{}',
      state,
      updated_at: sql<Date>`now() - make_interval(days => ${daysAgo})`,
    })
    .execute();
}

const keysOf = async (db: Db) =>
  (await db.selectFrom('webhook_events').select('dedupe_key').execute()).map((r) => r.dedupe_key).sort();

describe(`housekeeping on ${STORE}`, () => {
  it('prunes handled webhook events past DATA_RETENTION_DAYS and keeps waiting, dead and recent ones', async () => {
    b = await start({ DATA_RETENTION_DAYS: '30' });
    const db = b.ctx.db;
    await events(db, 'dispatched', 31);
    await events(db, 'skipped', 40);
    await events(db, 'unknown_type', 31);
    const kept = [
      ...(await events(db, 'received', 45)),
      ...(await events(db, 'dead', 45)),
      ...(await events(db, 'dispatched', 29)),
    ];
    await b.runMaintenance();
    expect(await keysOf(db)).toEqual(kept.sort());
  });

  it('prunes finished messages and keeps open ones, inbound messages GHL never got, and recent ones', async () => {
    b = await start({ DATA_RETENTION_DAYS: '30' });
    const db = b.ctx.db;
    await outbound(db, 'm-done-old', 'done', 31);
    await outbound(db, 'm-failed-old', 'failed', 60);
    await outbound(db, 'm-open-old', 'status_pending', 60);
    await outbound(db, 'm-sending-old', 'sending', 60);
    await outbound(db, 'm-done-new', 'done', 1);
    await inbound(db, 'i-done-old', 'done', 31);
    await inbound(db, 'i-failed-old', 'failed', 31);
    await inbound(db, 'i-received-old', 'received', 31);
    await inbound(db, 'i-done-new', 'done', 2);
    await b.runMaintenance();
    const out = (await db.selectFrom('provider_outbound').select('message_id').orderBy('message_id').execute()).map(
      (r) => r.message_id,
    );
    const inb = (
      await db.selectFrom('provider_inbound').select('channel_message_id').orderBy('channel_message_id').execute()
    ).map((r) => r.channel_message_id);
    expect(out).toEqual(['m-done-new', 'm-open-old', 'm-sending-old']);
    expect(inb).toEqual(['i-done-new', 'i-failed-old', 'i-received-old']);
  });

  it('DATA_RETENTION_DAYS=0 keeps everything', async () => {
    b = await start({ DATA_RETENTION_DAYS: '0' });
    const db = b.ctx.db;
    const keys = await events(db, 'dispatched', 400);
    await outbound(db, 'm-done-old', 'done', 400);
    await b.runMaintenance();
    expect(await keysOf(db)).toEqual(keys);
    expect(await db.selectFrom('provider_outbound').select('message_id').execute()).toHaveLength(1);
  });

  it('deleteInBatches runs short statements until one deletes less than a batch', async () => {
    b = await start({ DATA_RETENTION_DAYS: '0' });
    const db = b.ctx.db;
    await events(db, 'dispatched', 10, 7);
    const limits: number[] = [];
    const n = await deleteInBatches(db, 3, (limit) => {
      limits.push(limit);
      return sql`delete from webhook_events where id in (select id from webhook_events order by id limit ${limit})`;
    });
    expect(n).toBe(7);
    expect(limits).toEqual([3, 3, 3]); // 3 + 3 + 1
  });

  it('deletes in batches until nothing old is left', async () => {
    b = await start({ DATA_RETENTION_DAYS: '0' });
    const db = b.ctx.db;
    await events(db, 'dispatched', 10, 7);
    const kept = await events(db, 'dispatched', 1, 2);
    for (let i = 0; i < 5; i++) await outbound(db, `m${i}`, 'done', 10);
    for (let i = 0; i < 5; i++) await inbound(db, `i${i}`, 'done', 10);
    expect(await pruneEvents(db, 5, 3, AbortSignal.abort())).toBe(0); // shutting down: not a statement more
    expect(await pruneEvents(db, 5, 3)).toBe(7);
    expect(await keysOf(db)).toEqual(kept.sort());
    expect(await pruneMessages(db, 5, 2)).toBe(10);
    expect(await pruneMessages(db, 5, 2)).toBe(0);
  });
});
