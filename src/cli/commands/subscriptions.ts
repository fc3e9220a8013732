import type { Command } from 'commander';
import type { Config } from '../../infra/config/index.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { createLogger } from '../../infra/log/logger.js';
import { allMigrations } from '../../modules.js';
import {
  guardFromConfig,
  SubscriptionInputError,
  SubscriptionStore,
  type SubscriptionView,
} from '../../capabilities/events/index.js';
import { configOrExit, fail, openStore } from '../common.js';

async function withStore<T>(config: Config, fn: (s: SubscriptionStore) => Promise<T>): Promise<T> {
  let ring;
  try {
    ring = loadKeyRing(config, createLogger({ level: 'warn' }));
  } catch (e) {
    fail(e);
  }
  const store = await openStore(config);
  try {
    await migrateToLatest(store.db, store.schema, await allMigrations(config));
    const s = new SubscriptionStore({
      db: store.db,
      ring,
      guard: guardFromConfig(config),
      now: Date.now,
      overlapMs: config.EVENTS_SECRET_OVERLAP_HOURS * 3600_000,
    });
    return await fn(s);
  } catch (e) {
    if (e instanceof SubscriptionInputError) fail(new Error(`--${cliField(e.field)}: ${e.message}`));
    fail(e);
  } finally {
    await store.close();
  }
}

const cliField = (f: string) =>
  f.startsWith('eventTypes') ? 'event' : f === 'locationIds' ? 'location' : f === 'eventId' ? 'event' : f;
const collect = (v: string, prev: string[] = []) => [...prev, v];

function line(s: SubscriptionView): string {
  const flags = [
    s.state,
    s.ordering !== 'none' ? `ordered per ${s.ordering}` : '',
    s.circuitOpenUntil ? `circuit open until ${s.circuitOpenUntil.toISOString()}` : '',
    s.failingSince ? `failing since ${s.failingSince.toISOString()}` : '',
    s.disabledReason ? `(${s.disabledBy}: ${s.disabledReason})` : '',
  ].filter(Boolean);
  return `${s.id}  ${s.url}  [${s.eventTypes.join(', ')}]${s.locationIds ? ` locations: ${s.locationIds.join(', ')}` : ''}  ${flags.join(' ')}`;
}

const print = (json: boolean | undefined, v: unknown, text: () => string) =>
  console.log(json ? JSON.stringify(v, null, 2) : text());

/** `ghl-bridge subscriptions …`: event subscriptions, their deliveries and replay (same operations as /admin/api). */
export function registerSubscriptionsCommand(program: Command): void {
  const cmd = program
    .command('subscriptions')
    .description('event subscriptions: signed, retried deliveries of GHL and bridge events to your endpoints');
  cmd
    .command('create')
    .description('subscribe an endpoint; prints the signing secret once')
    .requiredOption('--url <url>', 'endpoint URL (http or https)')
    .requiredOption('--event <type>', 'event type or prefix (Contact*, message.*, *); repeat for several', collect)
    .option('--location <id>', 'only events of this location; repeat for several', collect)
    .option('--ordering <o>', 'none | location | contact', 'none')
    .option('--description <text>')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        url: string;
        event: string[];
        location?: string[];
        ordering: string;
        description?: string;
        json?: boolean;
      }) => {
        if (!['none', 'location', 'contact'].includes(o.ordering))
          fail(new Error(`--ordering: expected none, location or contact, got "${o.ordering}"`));
        const config = configOrExit();
        const r = await withStore(config, (s) =>
          s.create({
            url: o.url,
            eventTypes: o.event,
            locationIds: o.location ?? null,
            ordering: o.ordering as 'none' | 'location' | 'contact',
            description: o.description ?? null,
          }),
        );
        print(o.json, r, () => `${line(r.subscription)}\nsigning secret (shown once): ${r.secret}`);
      },
    );
  cmd
    .command('list')
    .description('every subscription (no secrets)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const l = await withStore(configOrExit(), (s) => s.list());
      print(o.json, l, () => (l.length ? l.map(line).join('\n') : 'no subscriptions'));
    });
  cmd
    .command('rotate-secret <id>')
    .description('new signing secret (printed once); the previous one also signs during the overlap')
    .option('--overlap-hours <h>', 'how long the previous secret keeps signing (default EVENTS_SECRET_OVERLAP_HOURS)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { overlapHours?: string; json?: boolean }) => {
      const h = o.overlapHours === undefined ? undefined : Number(o.overlapHours);
      if (h !== undefined && !(h >= 0)) fail(new Error('--overlap-hours: expected a number of hours ≥ 0'));
      const r = await withStore(configOrExit(), (s) =>
        s.rotateSecret(id, h === undefined ? {} : { overlapMs: h * 3600_000 }),
      );
      if (!r) fail(new Error(`no subscription ${id}`));
      print(
        o.json,
        r,
        () =>
          `new signing secret (shown once): ${r.secret}\n${r.previousSecretUntil ? `previous secret also signs until ${r.previousSecretUntil.toISOString()}` : 'previous secret retired'}`,
      );
    });
  for (const action of ['enable', 'disable'] as const)
    cmd
      .command(`${action} <id>`)
      .description(action === 'enable' ? 'enable (resets failures and the circuit)' : 'stop delivering')
      .action(async (id: string) => {
        const v = await withStore(configOrExit(), (s) => s.setEnabled(id, action === 'enable'));
        if (!v) fail(new Error(`no subscription ${id}`));
        console.log(line(v));
      });
  cmd
    .command('delete <id>')
    .description('delete a subscription and its delivery log')
    .action(async (id: string) => {
      const ok = await withStore(configOrExit(), (s) => s.delete(id));
      if (!ok) fail(new Error(`no subscription ${id}`));
      console.log(`deleted ${id}`);
    });
  cmd
    .command('deliveries')
    .description('deliveries, newest first, with each attempt (--attempts)')
    .option('--subscription <id>')
    .option('--event <id>')
    .option('--status <s>', 'pending | delivered | dead')
    .option('--limit <n>', 'at most this many', '50')
    .option('--attempts', 'show every attempt (time, status, latency, first bytes of the answer)')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        subscription?: string;
        event?: string;
        status?: string;
        limit: string;
        attempts?: boolean;
        json?: boolean;
      }) => {
        if (o.status && !['pending', 'delivered', 'dead'].includes(o.status))
          fail(new Error(`--status: expected pending, delivered or dead, got "${o.status}"`));
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
          fail(new Error('--limit: expected a whole number 1–1000'));
        const l = await withStore(configOrExit(), (s) =>
          s.deliveries({
            subscriptionId: o.subscription,
            eventId: o.event,
            status: o.status as 'pending' | 'delivered' | 'dead' | undefined,
            limit,
            withAttempts: o.attempts === true,
          }),
        );
        print(o.json, l, () =>
          l
            .map((d) =>
              [
                `${d.id}  ${d.eventId} ${d.eventType} → ${d.subscriptionId}  ${d.status} after ${d.attempts} attempt(s)${d.deadReason ? `: ${d.deadReason}` : d.lastError ? `; last: ${d.lastError}` : ''}`,
                ...(d.attemptLog ?? []).map(
                  (a) =>
                    `    #${a.attempt} ${a.at.toISOString()} ${a.statusCode ?? a.error ?? ''} ${a.latencyMs} ms ${a.responseHead ? JSON.stringify(a.responseHead.slice(0, 80)) : ''}`,
                ),
              ].join('\n'),
            )
            .join('\n'),
        );
      },
    );
  cmd
    .command('replay')
    .description('deliver events again: by event id, by time range, or a subscription’s dead deliveries')
    .option('--event <id>', 'this event')
    .option('--subscription <id>', 'only this subscription (alone: its dead deliveries)')
    .option('--since <iso>', 'events received at or after this time')
    .option('--until <iso>', 'events received before this time')
    .option('--only <which>', 'dead | all')
    .action(async (o: { event?: string; subscription?: string; since?: string; until?: string; only?: string }) => {
      const date = (name: string, v: string | undefined) => {
        if (v === undefined) return undefined;
        const t = Date.parse(v);
        if (Number.isNaN(t)) fail(new Error(`--${name}: expected an ISO 8601 time, got "${v}"`));
        return new Date(t);
      };
      if (o.only && o.only !== 'dead' && o.only !== 'all') fail(new Error('--only: expected dead or all'));
      const n = await withStore(configOrExit(), (s) =>
        s.replay({
          eventId: o.event,
          subscriptionId: o.subscription,
          since: date('since', o.since),
          until: date('until', o.until),
          only: o.only as 'dead' | 'all' | undefined,
        }),
      );
      console.log(`${n} deliveries queued again (a running bridge picks them up within EVENTS_POLL_MS)`);
    });
}
