import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { openDatabase } from '../../src/infra/db/index.js';
import { publishBridgeEvent } from '../../src/capabilities/events/service.js';
import { cliEnv, cliRunner } from '../helpers/cli.js';
import { openTestStore, STORE } from '../helpers/store.js';

describe('ghl-bridge subscriptions (CLI)', () => {
  it('create (secret once) · list · rotate-secret · disable/enable · deliveries · replay · delete; bad input names the option', async () => {
    const store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the CLI process takes the embedded store
    const env = cliEnv(store.env, { EVENTS_ALLOWED_NETWORKS: '127.0.0.0/8' });
    const { cli, fails } = cliRunner(env);
    /** Runs `fn` on the store between CLI runs (the embedded store admits one process at a time). */
    const withDb = async <T>(fn: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> => {
      if (STORE === 'postgres') return fn(store.db);
      const h = await openDatabase({ schema: store.env.DATABASE_SCHEMA!, dataDir: store.env.DATA_DIR! });
      try {
        return await fn(h.db);
      } finally {
        await h.close();
      }
    };
    try {
      const created = JSON.parse(
        (
          await cli(
            'subscriptions',
            'create',
            '--url',
            'http://127.0.0.1:9/hook',
            '--event',
            'Contact*',
            '--event',
            'message.sent',
            '--ordering',
            'contact',
            '--json',
          )
        ).stdout,
      ) as { subscription: { id: string; eventTypes: string[] }; secret: string };
      const id = created.subscription.id;
      expect(created.secret).toMatch(/^whsec_/);
      expect(created.subscription.eventTypes).toEqual(['Contact*', 'message.sent']);
      expect(() => new Webhook(created.secret)).not.toThrow();

      const list = await cli('subscriptions', 'list');
      expect(list.stdout).toContain(id);
      expect(list.stdout).toContain('ordered per contact');
      expect(list.stdout).not.toContain(created.secret);

      const rot = await cli('subscriptions', 'rotate-secret', id, '--overlap-hours', '2');
      const newSecret = /secret \(shown once\): (\S+)/.exec(rot.stdout)![1]!;
      expect(newSecret).not.toBe(created.secret);
      expect(rot.stdout).toMatch(/previous secret also signs until/);

      expect((await cli('subscriptions', 'disable', id)).stdout).toContain('disabled');
      expect((await cli('subscriptions', 'enable', id)).stdout).toContain('enabled');

      // An event whose delivery was dead-lettered, as a running bridge would have left it.
      const eventId = await withDb(async (db) => {
        const e = await publishBridgeEvent(
          db,
          {
            type: 'message.sent',
            locationId: 'L1',
            contactId: 'C1',
            data: { messageId: 'm1', locationId: 'L1', contactId: 'C1', channelMessageId: null, status: 'pending' },
          },
          new Date(),
        );
        await db
          .updateTable('event_deliveries')
          .set({ status: 'dead', attempts: 8, dead_reason: 'failed 8 attempts; last: HTTP 500' })
          .execute();
        return e;
      });
      const dead = await cli('subscriptions', 'deliveries', '--status', 'dead');
      expect(dead.stdout).toContain(eventId);
      expect(dead.stdout).toContain('failed 8 attempts');
      expect((await cli('subscriptions', 'replay', '--subscription', id)).stdout).toMatch(/^1 deliveries queued/);
      const again = JSON.parse(
        (await cli('subscriptions', 'deliveries', '--event', eventId, '--json')).stdout,
      ) as Array<{
        status: string;
        attempts: number;
        replays: number;
      }>;
      expect(again).toMatchObject([{ status: 'pending', attempts: 0, replays: 1 }]);

      const bad = await fails('subscriptions', 'create', '--url', 'http://127.0.0.1/x', '--event', 'no spaces');
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/--event/);
      const ssrf = await fails('subscriptions', 'create', '--url', 'http://10.0.0.1/x', '--event', '*');
      expect(ssrf.stderr).toMatch(/--url: .*10\.0\.0\.1.*private/);

      expect((await cli('subscriptions', 'delete', id)).stdout).toContain(`deleted ${id}`);
    } finally {
      if (STORE === 'postgres') await store.close();
    }
  }, 240_000); // ~12 CLI processes (each ~1.5 s on an idle machine)
});
