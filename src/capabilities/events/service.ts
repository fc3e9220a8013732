import { randomBytes } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import { decrypt, encrypt, type KeyRing } from '../../infra/crypto/aes.js';
import { registerSecret } from '../../infra/log/logger.js';
import type { SsrfGuard } from './ssrf.js';
import { BRIDGE_EVENT_SCHEMAS, EVENT_FILTER_PATTERN, type BridgeEventData, type BridgeEventType } from './schemas.js';
import type { DeliveryStatus, Ordering, SubscriptionRow } from './tables.js';
import './tables.js';

/** What `publish` takes: a bridge event type, its location (and contact, for per-contact ordering) and its data. */
export interface BridgeEventInput<T extends BridgeEventType = BridgeEventType> {
  type: T;
  locationId?: string | null;
  contactId?: string | null;
  data: BridgeEventData<T>;
}

/** The `events` service: publish bridge events (transactional outbox), manage subscriptions. */
export interface EventsService {
  /**
   * Records a bridge event and its fan-out rows (one per matching enabled subscription) in `db` — pass the caller's
   * transaction, so the event exists exactly when the state change it reports commits. Returns the event id.
   */
  publish<T extends BridgeEventType>(db: Db, e: BridgeEventInput<T>): Promise<string>;
  /** Wakes this replica's deliveries (after a commit that published events); other replicas poll. */
  wake(): void;
  /**
   * Whether any subscription is enabled (as this replica last read, at most EVENTS_POLL_MS ago). Modules may skip
   * building an event nobody can receive; events are recorded only while this is true.
   */
  active(): boolean;
  subscriptions: SubscriptionStore;
}

export interface SubscriptionInput {
  url: string;
  eventTypes: string[];
  locationIds?: string[] | null | undefined;
  ordering?: Ordering | undefined;
  description?: string | null | undefined;
  /** whsec_… of your own; generated when absent. */
  secret?: string | undefined;
}

export interface SubscriptionView {
  id: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  locationIds: string[] | null;
  ordering: Ordering;
  state: 'enabled' | 'disabled';
  disabledReason: string | null;
  disabledBy: string | null;
  disabledAt: Date | null;
  failingSince: Date | null;
  consecutiveFailures: number;
  circuitOpenUntil: Date | null;
  /** During a secret rotation: until when the previous secret still signs too. */
  previousSecretUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export class SubscriptionInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;
export const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
const aad = (subId: string, which: 'current' | 'previous') => `event-subscription:${subId}:${which}`;

/** Standard Webhooks secrets: whsec_ + base64 of 24–64 random bytes. */
export function validSecret(s: string): boolean {
  if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(s)) return false;
  const n = Buffer.from(s.slice(6), 'base64').length;
  return n >= 24 && n <= 64;
}

/** Checks a subscription's fields; throws SubscriptionInputError naming the field. */
export function checkSubscriptionInput(i: SubscriptionInput): void {
  let u: URL;
  try {
    u = new URL(i.url);
  } catch {
    throw new SubscriptionInputError('url', 'expected an absolute http(s) URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new SubscriptionInputError('url', `expected an http or https URL, got ${u.protocol}`);
  if (u.username || u.password) throw new SubscriptionInputError('url', 'credentials in the URL are not accepted');
  if (!i.eventTypes.length) throw new SubscriptionInputError('eventTypes', 'expected at least one event type');
  i.eventTypes.forEach((t, n) => {
    if (!EVENT_FILTER_PATTERN.test(t))
      throw new SubscriptionInputError(
        `eventTypes.${n}`,
        `"${t}" is not an event type or prefix (letters, digits, _ . : -, optionally ending in *)`,
      );
  });
  if (i.secret !== undefined && !validSecret(i.secret))
    throw new SubscriptionInputError('secret', 'expected whsec_ followed by base64 of 24–64 bytes');
}

/** SQL: does event `e` (event_log alias) pass subscription `s`'s filters? (matchesFilter in SQL.) */
export const filterMatchSql = sql`exists (
    select 1 from json_array_elements_text(s.event_types) f(t)
    where f.t = '*' or f.t = e.type or (right(f.t, 1) = '*' and starts_with(e.type, left(f.t, -1))))
  and (s.location_ids is null or e.location_id in (select json_array_elements_text(s.location_ids)))`;

/** SQL: the ordering key of a delivery of event `e` to subscription `s`. */
export const orderKeySql = sql`case s.ordering
    when 'location' then e.location_id
    when 'contact' then case when e.contact_id is null then null else coalesce(e.location_id, '') || '/' || e.contact_id end
    else null end`;

/** A new event row plus its fan-out rows, in one statement (so neither exists without the other). */
export function fanOutSql(
  ev: {
    id: string;
    source: 'ghl' | 'bridge';
    type: string;
    version: number;
    locationId: string | null;
    contactId: string | null;
    webhookEventId: number | null;
    receivedAt: Date;
    data: unknown;
  },
  now: Date,
): RawBuilder<unknown> {
  return sql`
    with e as (
      insert into event_log (id, source, type, version, location_id, contact_id, webhook_event_id, received_at, data)
      values (${ev.id}, ${ev.source}, ${ev.type}, ${ev.version}, ${ev.locationId}, ${ev.contactId},
              ${ev.webhookEventId}, ${ev.receivedAt}, ${JSON.stringify(ev.data)}::json)
      on conflict do nothing
      returning id, type, location_id, contact_id
    )
    insert into event_deliveries (event_id, subscription_id, order_key, status, next_at, created_at)
    select e.id, s.id, ${orderKeySql}, 'pending', ${now}, ${now}
    from e join event_subscriptions s on s.state = 'enabled' and ${filterMatchSql}
    on conflict do nothing`;
}

/**
 * CTEs for the webhook intake's insert statement (WebhooksService.onStored): the event rows of the newly stored GHL
 * events (CTE `ev`) and their fan-out rows. The contact is the payload's contactId, or its id for Contact* events.
 */
export function ghlFanOutCtes(now: Date): RawBuilder<unknown> {
  return sql`ev_log as (
      insert into event_log (id, source, type, version, location_id, contact_id, webhook_event_id, received_at, data)
      select 'evt_ghl_' || ev.id, 'ghl', ev.type, 1, ev.location_id,
        nullif(coalesce(ev.payload->>'contactId', case when ev.type like 'Contact%' then ev.payload->>'id' end), ''),
        ev.id, ev.received_at, ev.payload
      from ev where ev.type is not null and ev.payload is not null and json_typeof(ev.payload) = 'object'
      order by ev.id
      on conflict do nothing
      returning id, type, location_id, contact_id
    ), ev_fan as (
      insert into event_deliveries (event_id, subscription_id, order_key, status, next_at, created_at)
      select e.id, s.id, ${orderKeySql}, 'pending', ${now}, ${now}
      from ev_log e join event_subscriptions s on s.state = 'enabled' and ${filterMatchSql}
      order by e.id
      on conflict do nothing
    )`;
}

export function newEventId(): string {
  return newId('evt');
}

/** Event id of a stored GHL webhook event: stable across re-dispatch and replay. */
export const ghlEventId = (webhookEventId: number): string => `evt_ghl_${webhookEventId}`;

export async function publishBridgeEvent<T extends BridgeEventType>(
  db: Db,
  e: BridgeEventInput<T>,
  now: Date,
): Promise<string> {
  const def = BRIDGE_EVENT_SCHEMAS[e.type];
  const data = def.schema.parse(e.data);
  const id = newEventId();
  await fanOutSql(
    {
      id,
      source: 'bridge',
      type: e.type,
      version: def.version,
      locationId: e.locationId ?? null,
      contactId: e.contactId ?? null,
      webhookEventId: null,
      receivedAt: now,
      data,
    },
    now,
  ).execute(db);
  return id;
}

type SubRow = SubscriptionRow;

export function toView(r: SubRow): SubscriptionView {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    eventTypes: r.event_types,
    locationIds: r.location_ids,
    ordering: r.ordering,
    state: r.state,
    disabledReason: r.disabled_reason,
    disabledBy: r.disabled_by,
    disabledAt: r.disabled_at,
    failingSince: r.failing_since,
    consecutiveFailures: Number(r.consecutive_failures),
    circuitOpenUntil: r.circuit_open_until,
    previousSecretUntil: r.previous_secret_until,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface ReplaySelection {
  eventId?: string | undefined;
  subscriptionId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** 'dead': only deliveries that were dead-lettered; 'all': every matching event. Default: dead when only a subscription is given. */
  only?: 'dead' | 'all' | undefined;
}

export interface DeliveryView {
  id: number;
  eventId: string;
  eventType: string;
  subscriptionId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAt: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  deadReason: string | null;
  replays: number;
  createdAt: Date;
  finishedAt: Date | null;
  attemptLog?: AttemptView[];
}

export interface AttemptView {
  attempt: number;
  at: Date;
  statusCode: number | null;
  latencyMs: number;
  responseHead: string | null;
  error: string | null;
}

/** Subscriptions and their deliveries, over one store (used by the module, the admin API and the CLI). */
export class SubscriptionStore {
  constructor(
    private readonly o: {
      db: Db;
      ring: KeyRing;
      guard: SsrfGuard;
      now: () => number;
      overlapMs: number;
      /** After a committed change of the subscriptions: reloads this replica's view (awaited before answering). */
      onChange?: () => Promise<void> | void;
    },
  ) {}

  async create(input: SubscriptionInput): Promise<{ subscription: SubscriptionView; secret: string }> {
    checkSubscriptionInput(input);
    try {
      await this.o.guard.check(input.url);
    } catch (e) {
      throw new SubscriptionInputError('url', (e as Error).message);
    }
    const id = newId('sub');
    const secret = input.secret ?? newSecret();
    registerSecret(secret);
    const now = new Date(this.o.now());
    const row = await this.o.db
      .insertInto('event_subscriptions')
      .values({
        id,
        url: input.url,
        description: input.description ?? null,
        secret_enc: encrypt(this.o.ring, secret, aad(id, 'current')),
        previous_secret_enc: null,
        previous_secret_until: null,
        event_types: JSON.stringify(input.eventTypes),
        location_ids: input.locationIds?.length ? JSON.stringify(input.locationIds) : null,
        ordering: input.ordering ?? 'none',
        state: 'enabled',
        disabled_reason: null,
        disabled_by: null,
        disabled_at: null,
        failing_since: null,
        circuit_open_until: null,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await this.o.onChange?.();
    return { subscription: toView(row), secret };
  }

  async list(): Promise<SubscriptionView[]> {
    const rows = await this.o.db.selectFrom('event_subscriptions').selectAll().orderBy('created_at').execute();
    return rows.map(toView);
  }

  async get(id: string): Promise<SubscriptionView | undefined> {
    const r = await this.o.db.selectFrom('event_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toView(r);
  }

  /**
   * New signing secret; the previous one keeps signing (both signatures in webhook-signature) for `overlapMs`
   * (default EVENTS_SECRET_OVERLAP_HOURS; 0 = retire it at once). Returns the new secret (shown once).
   */
  async rotateSecret(
    id: string,
    opts: { overlapMs?: number; secret?: string } = {},
  ): Promise<{ secret: string; previousSecretUntil: Date | null } | undefined> {
    if (opts.secret !== undefined && !validSecret(opts.secret))
      throw new SubscriptionInputError('secret', 'expected whsec_ followed by base64 of 24–64 bytes');
    const overlap = opts.overlapMs ?? this.o.overlapMs;
    const secret = opts.secret ?? newSecret();
    registerSecret(secret);
    const now = this.o.now();
    const rotated = await this.o.db.transaction().execute(async (trx) => {
      const r = await trx
        .selectFrom('event_subscriptions')
        .select(['secret_enc'])
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!r) return undefined;
      const until = overlap > 0 ? new Date(now + overlap) : null;
      const previous = until
        ? encrypt(this.o.ring, decrypt(this.o.ring, r.secret_enc, aad(id, 'current')), aad(id, 'previous'))
        : null;
      await trx
        .updateTable('event_subscriptions')
        .set({
          secret_enc: encrypt(this.o.ring, secret, aad(id, 'current')),
          previous_secret_enc: previous,
          previous_secret_until: until,
          updated_at: new Date(now),
        })
        .where('id', '=', id)
        .execute();
      return { secret, previousSecretUntil: until };
    });
    // After the commit: a reload inside the transaction read the old secret (on PostgreSQL) and kept signing with it
    // alone until the next poll.
    if (rotated) await this.o.onChange?.();
    return rotated;
  }

  /** The secrets that sign now: the current one, and the previous one during its overlap. */
  async signingSecrets(id: string): Promise<string[]> {
    const r = await this.o.db
      .selectFrom('event_subscriptions')
      .select(['secret_enc', 'previous_secret_enc', 'previous_secret_until'])
      .where('id', '=', id)
      .executeTakeFirst();
    return r ? signingSecrets(this.o.ring, id, r, this.o.now()) : [];
  }

  async setEnabled(id: string, enabled: boolean, reason?: string): Promise<SubscriptionView | undefined> {
    const now = new Date(this.o.now());
    const r = await this.o.db
      .updateTable('event_subscriptions')
      .set(
        enabled
          ? {
              state: 'enabled',
              disabled_reason: null,
              disabled_by: null,
              disabled_at: null,
              failing_since: null,
              consecutive_failures: 0,
              circuit_open_until: null,
              updated_at: now,
            }
          : {
              state: 'disabled',
              disabled_reason: reason ?? 'disabled by an operator',
              disabled_by: 'operator',
              disabled_at: now,
              updated_at: now,
            },
      )
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    await this.o.onChange?.();
    return r && toView(r);
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.o.db.deleteFrom('event_subscriptions').where('id', '=', id).executeTakeFirst();
    await this.o.onChange?.();
    return Number(r.numDeletedRows) > 0;
  }

  /** Subscriptions the bridge disabled itself (410, failing too long): the alerts an operator must look at. */
  async alerts(): Promise<SubscriptionView[]> {
    const rows = await this.o.db
      .selectFrom('event_subscriptions')
      .selectAll()
      .where('state', '=', 'disabled')
      .where('disabled_by', '=', 'system')
      .orderBy('disabled_at', 'desc')
      .execute();
    return rows.map(toView);
  }

  async deliveries(f: {
    subscriptionId?: string | undefined;
    eventId?: string | undefined;
    status?: DeliveryStatus | undefined;
    limit?: number | undefined;
    withAttempts?: boolean | undefined;
  }): Promise<DeliveryView[]> {
    let q = this.o.db
      .selectFrom('event_deliveries as d')
      .innerJoin('event_log as e', 'e.id', 'd.event_id')
      .select([
        'd.id',
        'd.event_id',
        'e.type',
        'd.subscription_id',
        'd.status',
        'd.attempts',
        'd.next_at',
        'd.last_status',
        'd.last_error',
        'd.dead_reason',
        'd.replays',
        'd.created_at',
        'd.finished_at',
      ])
      .orderBy('d.id', 'desc')
      .limit(f.limit ?? 100);
    if (f.subscriptionId) q = q.where('d.subscription_id', '=', f.subscriptionId);
    if (f.eventId) q = q.where('d.event_id', '=', f.eventId);
    if (f.status) q = q.where('d.status', '=', f.status);
    const rows = await q.execute();
    const views: DeliveryView[] = rows.map((r) => ({
      id: Number(r.id),
      eventId: r.event_id,
      eventType: r.type,
      subscriptionId: r.subscription_id,
      status: r.status,
      attempts: Number(r.attempts),
      nextAt: r.status === 'pending' ? r.next_at : null,
      lastStatus: r.last_status,
      lastError: r.last_error,
      deadReason: r.dead_reason,
      replays: Number(r.replays),
      createdAt: r.created_at,
      finishedAt: r.finished_at,
    }));
    if (f.withAttempts && views.length) {
      const atts = await this.o.db
        .selectFrom('event_delivery_attempts')
        .selectAll()
        .where(
          'delivery_id',
          'in',
          views.map((v) => v.id),
        )
        .orderBy('id')
        .execute();
      const by = new Map<number, AttemptView[]>();
      for (const a of atts) {
        const l = by.get(Number(a.delivery_id)) ?? [];
        l.push({
          attempt: a.attempt,
          at: a.at,
          statusCode: a.status_code,
          latencyMs: a.latency_ms,
          responseHead: a.response_head,
          error: a.error,
        });
        by.set(Number(a.delivery_id), l);
      }
      for (const v of views) v.attemptLog = by.get(v.id) ?? [];
    }
    return views;
  }

  /**
   * Delivers events again: every event of the selection to every enabled subscription whose filters it passes (or
   * the one given). A delivery that exists is reset to pending with its attempts at 0 (one still pending is left
   * alone); one that does not is created (so a time range also back-fills a new subscription). Returns how many.
   */
  async replay(sel: ReplaySelection): Promise<number> {
    if (!sel.eventId && !sel.subscriptionId && !sel.since)
      throw new SubscriptionInputError('eventId', 'give an eventId, a subscriptionId or a since time');
    const only = sel.only ?? (sel.subscriptionId && !sel.eventId && !sel.since ? 'dead' : 'all');
    const now = new Date(this.o.now());
    const conds: RawBuilder<unknown>[] = [sql`s.state = 'enabled'`, filterMatchSql];
    if (sel.eventId) conds.push(sql`e.id = ${sel.eventId}`);
    if (sel.subscriptionId) conds.push(sql`s.id = ${sel.subscriptionId}`);
    if (sel.since) conds.push(sql`e.received_at >= ${sel.since}`);
    if (sel.until) conds.push(sql`e.received_at < ${sel.until}`);
    if (only === 'dead')
      conds.push(
        sql`exists (select 1 from event_deliveries x where x.event_id = e.id and x.subscription_id = s.id and x.status = 'dead')`,
      );
    const r = await sql<{ n: number }>`
      with r as (
        insert into event_deliveries (event_id, subscription_id, order_key, status, next_at, created_at)
        select e.id, s.id, ${orderKeySql}, 'pending', ${now}, ${now}
        from event_log e cross join event_subscriptions s
        where ${sql.join(conds, sql` and `)}
        order by e.seq
        on conflict (subscription_id, event_id) do update set
          status = 'pending', attempts = 0, next_at = excluded.next_at, leased_until = null, dead_reason = null,
          finished_at = null, replays = event_deliveries.replays + 1
        where event_deliveries.status <> 'pending'
        returning 1
      )
      select count(*)::int as n from r`.execute(this.o.db);
    await this.o.onChange?.();
    return Number(r.rows[0]?.n ?? 0);
  }
}

export function signingSecrets(
  ring: KeyRing,
  id: string,
  r: { secret_enc: string; previous_secret_enc: string | null; previous_secret_until: Date | null },
  now: number,
): string[] {
  const out = [decrypt(ring, r.secret_enc, aad(id, 'current'))];
  if (r.previous_secret_enc && r.previous_secret_until && r.previous_secret_until.getTime() > now)
    out.push(decrypt(ring, r.previous_secret_enc, aad(id, 'previous')));
  for (const s of out) registerSecret(s);
  return out;
}
