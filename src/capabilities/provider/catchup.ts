/**
 * Catch-up (issue 12): GHL retries a Delivery-URL call only on a 429, so a message it tried to deliver while the
 * bridge was down (connection refused, reset, a 503 while draining) — or never tried at all — stays `pending` in GHL
 * for ever. Per location, this task reads the location's messages with `GET /conversations/messages/export`
 * (ascending createdAt, cursor pages, bulk lane) from a stored checkpoint, picks the outbound `pending` messages of
 * this app's conversation provider that the bridge has no record of, and relays them through the same state machine
 * as a delivery (row in provider_outbound keyed by the messageId → `provider.send` → `provider.status`). The read is
 * authenticated with the location's own token, so it is its own proof of authenticity (no confirmation needed);
 * an unsigned delivery still awaiting confirmation that the read finds is confirmed by it.
 *
 * Safety: the messageId is the primary key of provider_outbound, so a catch-up and a live delivery of the same
 * message insert one row between them, and the send runs in a job with the contact's ordering key — the same key as
 * the delivery's dispatch job — so the two never call the channel at the same time: one send. Missed messages older
 * than PROVIDER_CATCHUP_MAX_AGE_MS are reported `failed` (never sent late). The checkpoint only moves past messages
 * that were handled (their rows committed), and never into the last PROVIDER_CATCHUP_SETTLE_MS, which GHL's own
 * delivery is still likely to cover — except at start-up, whose run reads up to the bridge's start: GHL's deliveries of
 * everything created before then met a dead bridge (a delivery still under way races the read: one send).
 */
import { sql, type ColumnType, type Kysely, type Migration } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Counter, Gauge } from 'prom-client';
import { errorResponses, timestamp } from '../../infra/http/schemas.js';
import type { Message as GhlMessage } from '../../platform/ghl/types.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import { enqueueSend, statusJob, type OutboundRuntime } from './outbound.js';
import './tables.js';

export interface ProviderCatchupTable {
  location_id: string;
  /** 'default' = the export without a channel (every non-email type); 'email' = channel=Email. */
  stream: string;
  /** createdAt of the newest message handled (messages created before it are never read again). */
  checkpoint_at: Date;
  last_run_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  last_caught_up: ColumnType<number, number | undefined, number>;
  last_expired: ColumnType<number, number | undefined, number>;
  last_calls: ColumnType<number, number | undefined, number>;
  last_error: string | null;
  caught_up_total: ColumnType<number, number | undefined, number>;
  expired_total: ColumnType<number, number | undefined, number>;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    provider_catchup: ProviderCatchupTable;
  }
}

export const providerCatchupMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      create table provider_catchup (
        location_id text not null,
        stream text not null,
        checkpoint_at timestamptz not null,
        last_run_at timestamptz,
        last_caught_up integer not null default 0,
        last_expired integer not null default 0,
        last_calls integer not null default 0,
        last_error text,
        caught_up_total bigint not null default 0,
        expired_total bigint not null default 0,
        primary key (location_id, stream)
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table provider_catchup`.execute(db);
  },
};

export interface CatchupSettings {
  /** A missed message older than this is reported failed instead of sent. */
  maxAgeMs: number;
  /** Messages younger than this are left to GHL's delivery; the checkpoint stops before them. */
  settleMs: number;
  /** Export page size (10–500). */
  pageLimit: number;
  /** Pages read per stream and run at most (the next run continues from the checkpoint). */
  maxPages: number;
}

export interface CatchupRuntime {
  out: OutboundRuntime;
  settings: CatchupSettings;
  /** GHL_CONVERSATION_PROVIDER_ID (a location's channel may override it). */
  conversationProviderId: string | undefined;
  /** Locations to walk when none is named: those with an active installation. */
  locations: () => Promise<string[]>;
  metrics: { messages: Counter<'location' | 'outcome'>; lag: Gauge<'location'>; calls: Counter<'location'> };
}

export interface CatchupResult {
  locationId: string;
  /** Relayed now (the bridge had no record). */
  caughtUp: number;
  /** Unsigned deliveries still awaiting confirmation, confirmed by the read. */
  confirmed: number;
  /** Too old: reported failed, not sent. */
  expired: number;
  /** GHL API calls made (export pages + contact reads). */
  calls: number;
  /** Set when the location was skipped or the walk stopped early. */
  error?: string;
  /** createdAt of the newest handled message (per stream), after the run. */
  checkpoints: Record<string, string>;
}

export const EXPIRED_CODE = 'NOT_DELIVERED_IN_TIME';
const STREAMS = [
  { stream: 'default', channel: undefined },
  { stream: 'email', channel: 'Email' as const },
];
const SMS_TYPES = new Set(['TYPE_SMS', 'TYPE_CUSTOM_SMS', 'TYPE_CUSTOM_PROVIDER_SMS']);
const EMAIL_TYPES = new Set(['TYPE_EMAIL', 'TYPE_CUSTOM_EMAIL', 'TYPE_CUSTOM_PROVIDER_EMAIL']);
const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 500);

/** Is this exported message an outbound, still-pending message of our provider? (Never another provider's.) */
export function isOurPending(
  m: Pick<GhlMessage, 'direction' | 'status' | 'messageType'> & { conversationProviderId?: string },
  providerId: string,
): 'SMS' | 'Email' | null {
  if (m.direction !== 'outbound' || m.status !== 'pending' || m.conversationProviderId !== providerId) return null;
  if (SMS_TYPES.has(m.messageType)) return 'SMS';
  if (EMAIL_TYPES.has(m.messageType)) return 'Email';
  return null;
}

/** Locations walked at the same time: GHL's rate limit is per location, so they do not slow each other down. */
export const CATCHUP_CONCURRENCY = 16;

/**
 * Runs the catch-up for one location (or every installed location, up to CATCHUP_CONCURRENCY at a time). Errors of
 * one location do not stop the others. `upTo`: the walk reads up to this time, inside the settle window too and never past it (the
 * start-up run passes the bridge's start: every delivery GHL attempted before it met a dead bridge, and nothing after).
 */
export async function runCatchup(
  rt: CatchupRuntime,
  o: {
    locationId?: string | undefined;
    since?: Date | undefined;
    signal?: AbortSignal | undefined;
    upTo?: Date | undefined;
  } = {},
): Promise<CatchupResult[]> {
  const locations = o.locationId ? [o.locationId] : await rt.locations();
  const results: Array<CatchupResult | undefined> = new Array(locations.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < locations.length && !o.signal?.aborted; i = next++)
      results[i] = await catchupLocation(rt, locations[i]!, o.since, o.signal, o.upTo);
  };
  await Promise.all(Array.from({ length: Math.min(CATCHUP_CONCURRENCY, locations.length) }, worker));
  return results.filter((r): r is CatchupResult => r !== undefined);
}

async function providerIdOf(rt: CatchupRuntime, locationId: string): Promise<string | undefined> {
  const ch = await rt.out.db
    .selectFrom('provider_channels')
    .select('conversation_provider_id')
    .where('location_id', '=', locationId)
    .executeTakeFirst();
  return ch?.conversation_provider_id ?? rt.conversationProviderId;
}

export async function catchupLocation(
  rt: CatchupRuntime,
  locationId: string,
  since: Date | undefined,
  signal: AbortSignal | undefined,
  upTo?: Date,
): Promise<CatchupResult> {
  const res: CatchupResult = { locationId, caughtUp: 0, confirmed: 0, expired: 0, calls: 0, checkpoints: {} };
  const providerId = await providerIdOf(rt, locationId);
  if (!providerId) {
    res.error =
      "no conversation provider id (GHL_CONVERSATION_PROVIDER_ID or the channel's conversationProviderId): cannot tell this provider's messages from others";
    return res;
  }
  const { db } = rt.out;
  const contacts = new Map<string, { phone?: string; email?: string }>();
  for (const s of STREAMS) {
    const stored = await db
      .selectFrom('provider_catchup')
      .selectAll()
      .where('location_id', '=', locationId)
      .where('stream', '=', s.stream)
      .executeTakeFirst();
    const start = since ?? stored?.checkpoint_at ?? new Date(Date.now() - rt.settings.maxAgeMs);
    let checkpoint = start.getTime();
    const before = { caughtUp: res.caughtUp, expired: res.expired, calls: res.calls };
    let error: string | undefined;
    try {
      let cursor: string | undefined;
      walk: for (let page = 0; page < rt.settings.maxPages; page++) {
        res.calls++;
        rt.metrics.calls.inc({ location: locationId });
        const r = await rt.out.ghl().messages.export(
          {
            locationId,
            limit: rt.settings.pageLimit,
            sortBy: 'createdAt',
            sortOrder: 'asc',
            startDate: start.toISOString(),
            ...(s.channel ? { channel: s.channel } : {}),
            ...(cursor ? { cursor } : {}),
          },
          { installation: { locationId }, lane: 'bulk', ...(signal ? { signal } : {}) },
        );
        // A start-up run reads exactly up to the bridge's start (inside the settle window too, and never past it:
        // what came after is live traffic, which the next periodic run covers). Others stop at the settle window.
        const settledBefore = Math.min(Date.now(), upTo ? upTo.getTime() : Date.now() - rt.settings.settleMs);
        let stop = false;
        // In order: the checkpoint moves past a message only once it is handled (its row committed).
        for (const m of r.messages ?? []) {
          const at = Date.parse(m.dateAdded);
          if (!Number.isFinite(at)) continue;
          if (at > settledBefore) {
            stop = true;
            break;
          }
          const kind = isOurPending(m, providerId);
          if (kind) await handle(rt, locationId, m, kind, at, contacts, res, signal);
          checkpoint = Math.max(checkpoint, at);
        }
        // Ascending order: every message created up to settledBefore has been seen once the walk stops or ends.
        if (stop || !r.nextCursor) checkpoint = Math.max(checkpoint, settledBefore);
        await saveCheckpoint(rt, locationId, s.stream, checkpoint);
        if (stop || !r.nextCursor) break walk;
        cursor = r.nextCursor;
      }
    } catch (e) {
      if (signal?.aborted) throw e;
      error = e instanceof GhlApiError ? `GHL ${e.status}: ${errText(e)}` : errText(e);
      res.error = error;
    }
    await db
      .insertInto('provider_catchup')
      .values({
        location_id: locationId,
        stream: s.stream,
        checkpoint_at: new Date(checkpoint),
        last_run_at: new Date(),
      })
      .onConflict((oc) =>
        oc.columns(['location_id', 'stream']).doUpdateSet({
          checkpoint_at: sql`greatest(provider_catchup.checkpoint_at, excluded.checkpoint_at)`,
          last_run_at: sql`now()`,
          last_caught_up: res.caughtUp - before.caughtUp,
          last_expired: res.expired - before.expired,
          last_calls: res.calls - before.calls,
          last_error: error ?? null,
          caught_up_total: sql`provider_catchup.caught_up_total + ${res.caughtUp - before.caughtUp}`,
          expired_total: sql`provider_catchup.expired_total + ${res.expired - before.expired}`,
        }),
      )
      .execute();
    res.checkpoints[s.stream] = new Date(checkpoint).toISOString();
  }
  // Lag: how far behind "now" the oldest stream checkpoint is (the settle window included).
  const oldest = Math.min(...Object.values(res.checkpoints).map((t) => Date.parse(t)));
  rt.metrics.lag.set({ location: locationId }, Math.max(0, (Date.now() - oldest) / 1000));
  return res;
}

async function saveCheckpoint(rt: CatchupRuntime, locationId: string, stream: string, at: number): Promise<void> {
  await rt.out.db
    .insertInto('provider_catchup')
    .values({ location_id: locationId, stream, checkpoint_at: new Date(at) })
    .onConflict((oc) =>
      oc
        .columns(['location_id', 'stream'])
        .doUpdateSet({ checkpoint_at: sql`greatest(provider_catchup.checkpoint_at, excluded.checkpoint_at)` }),
    )
    .execute();
}

/** One missed (or still unconfirmed) message of ours: relay it, confirm it, or report it failed when too old. */
async function handle(
  rt: CatchupRuntime,
  locationId: string,
  m: GhlMessage & { conversationProviderId?: string },
  kind: 'SMS' | 'Email',
  createdAt: number,
  contacts: Map<string, { phone?: string; email?: string }>,
  res: CatchupResult,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { db } = rt.out;
  const known = await db
    .selectFrom('provider_outbound')
    .select(['state', 'contact_id'])
    .where('message_id', '=', m.id)
    .executeTakeFirst();
  if (known) {
    if (known.state !== 'awaiting_confirmation' || known.contact_id !== m.contactId) return;
    // An unsigned delivery waiting for its confirmation: this authenticated read of the same message confirms it.
    const won = await db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('provider_outbound')
        .set({ state: 'received', confirmed_by: 'catchup', updated_at: sql`now()` })
        .where('message_id', '=', m.id)
        .where('state', '=', 'awaiting_confirmation')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await enqueueSend(rt.out, trx, { messageId: m.id, locationId, contactId: m.contactId });
      return true;
    });
    if (won) {
      res.confirmed++;
      rt.metrics.messages.inc({ location: locationId, outcome: 'confirmed' });
      rt.out.notify();
    }
    return;
  }
  const base = {
    message_id: m.id,
    location_id: locationId,
    contact_id: m.contactId,
    channel: kind,
    confirmed_by: 'catchup',
  };
  if (Date.now() - createdAt > rt.settings.maxAgeMs) {
    const minutes = Math.round(rt.settings.maxAgeMs / 60_000);
    const error = {
      code: EXPIRED_CODE,
      type: 'provider',
      message: `not delivered to the provider in time: GHL did not deliver it to the bridge and it is older than ${minutes} min (PROVIDER_CATCHUP_MAX_AGE_MS), so it was not sent late`,
    };
    const inserted = await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('provider_outbound')
        .values({
          ...base,
          payload: json({ messageId: m.id, locationId, contactId: m.contactId, type: kind }),
          state: 'failed',
          status_target: 'failed',
          target_at: new Date(),
          error: json(error),
          last_error: error.message,
        })
        .onConflict((oc) => oc.column('message_id').doNothing())
        .returning('message_id')
        .executeTakeFirst();
      if (row) await statusJob.enqueue(trx, { messageId: m.id, locationId });
      return row !== undefined;
    });
    if (inserted) {
      res.expired++;
      rt.metrics.messages.inc({ location: locationId, outcome: 'expired' });
      rt.out.log.warn(
        { messageId: m.id, locationId, ageMs: Date.now() - createdAt },
        'missed provider message too old: reported failed, not sent',
      );
      rt.out.notify();
    }
    return;
  }
  // The delivery payload GHL would have posted, rebuilt from the message and its contact (the export has no phone
  // or e-mail address; one contact read per contact and run, bulk lane).
  let c = contacts.get(m.contactId);
  if (!c) {
    c = {};
    try {
      res.calls++;
      rt.metrics.calls.inc({ location: locationId });
      const r = (await rt.out
        .ghl()
        .contacts.get(m.contactId, { installation: { locationId }, lane: 'bulk', ...(signal ? { signal } : {}) })) as {
        contact?: { phone?: string | null; email?: string | null };
      };
      if (r.contact?.phone) c.phone = r.contact.phone;
      if (r.contact?.email) c.email = r.contact.email;
    } catch (e) {
      // A contact GHL will not show: send without the address, so the channel refuses it with its reason.
      if (!(e instanceof GhlApiError) || e.status >= 500 || e.status === 429) throw e;
    }
    contacts.set(m.contactId, c);
  }
  const payload: Record<string, unknown> =
    kind === 'SMS'
      ? {
          contactId: m.contactId,
          locationId,
          messageId: m.id,
          type: 'SMS',
          phone: c.phone ?? '',
          message: m.body ?? '',
          attachments: m.attachments ?? [],
          ...(m.userId ? { userId: m.userId } : {}),
        }
      : {
          contactId: m.contactId,
          locationId,
          messageId: m.id,
          type: 'Email',
          emailTo: c.email ? [c.email] : [],
          html: m.body ?? '',
          attachments: m.attachments ?? [],
          ...(m.userId ? { userId: m.userId } : {}),
        };
  const inserted = await db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('provider_outbound')
      .values({ ...base, payload: json(payload), state: 'received' })
      .onConflict((oc) => oc.column('message_id').doNothing())
      .returning('message_id')
      .executeTakeFirst();
    if (row) await enqueueSend(rt.out, trx, { messageId: m.id, locationId, contactId: m.contactId });
    return row !== undefined;
  });
  if (inserted) {
    res.caughtUp++;
    rt.metrics.messages.inc({ location: locationId, outcome: 'caught_up' });
    rt.out.notify();
  }
}

/** Last catch-up per location and stream (dashboard, CLI). */
export async function catchupOverview(db: OutboundRuntime['db'], locationId?: string) {
  let q = db.selectFrom('provider_catchup').selectAll().orderBy('location_id').orderBy('stream');
  if (locationId) q = q.where('location_id', '=', locationId);
  return (await q.execute()).map((r) => ({
    locationId: r.location_id,
    stream: r.stream,
    checkpointAt: r.checkpoint_at,
    lastRunAt: r.last_run_at,
    lastCaughtUp: r.last_caught_up,
    lastExpired: r.last_expired,
    lastCalls: r.last_calls,
    lastError: r.last_error,
    caughtUpTotal: Number(r.caught_up_total),
    expiredTotal: Number(r.expired_total),
  }));
}

const catchupBody = z
  .object({
    locationId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a GHL location id')
      .optional(),
    since: z.iso.datetime({ offset: true, message: 'expected an ISO 8601 date-time' }).optional(),
  })
  .strict();

const catchupResult = z.object({
  locationId: z.string(),
  caughtUp: z.number().int(),
  confirmed: z.number().int(),
  expired: z.number().int(),
  calls: z.number().int(),
  error: z.string().optional(),
  checkpoints: z.record(z.string(), z.string()).describe('per stream: createdAt of the newest handled message'),
});

const catchupRow = z.object({
  locationId: z.string(),
  stream: z.string(),
  checkpointAt: timestamp,
  lastRunAt: timestamp.nullable(),
  lastCaughtUp: z.number().int(),
  lastExpired: z.number().int(),
  lastCalls: z.number().int(),
  lastError: z.string().nullable(),
  caughtUpTotal: z.number(),
  expiredTotal: z.number(),
});

/** POST /admin/provider/catch-up {locationId?, since?} → {results}; GET /admin/provider/catch-up → last runs. */
export async function registerCatchupAdminRoutes(
  app: FastifyInstance,
  o: {
    run: (locationId?: string, since?: Date) => Promise<CatchupResult[]>;
    overview: () => Promise<Array<z.input<typeof catchupRow>>>;
  },
): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['admin: provider'];
  r.post(
    '/admin/provider/catch-up',
    {
      schema: {
        tags,
        summary: 'Run the catch-up (messages GHL sent while the bridge was away) now, for one or every location',
        body: catchupBody.optional(),
        response: { 200: z.object({ results: z.array(catchupResult) }), ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const b = req.body ?? {};
      return { results: await o.run(b.locationId, b.since ? new Date(b.since) : undefined) };
    },
  );
  r.get(
    '/admin/provider/catch-up',
    {
      schema: {
        tags,
        summary: 'The last catch-up run and checkpoint per location and stream',
        response: { 200: z.object({ locations: z.array(catchupRow) }), ...errorResponses(401) },
      },
    },
    async () => ({ locations: await o.overview() }),
  );
}
