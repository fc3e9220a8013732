import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import { decrypt, encrypt, keyIdOf, reencrypt, type KeyRing } from '../../infra/crypto/aes.js';
import type { Db } from '../../infra/db/index.js';
import { registerSecret } from '../../infra/log/logger.js';
import { defineJob, PermanentJobError, RetryLaterError, type BackoffPolicy } from '../../infra/queue/index.js';
import { withDeadline } from '../../infra/util/deadline.js';
import type { PipelineMetrics } from './metrics.js';
import type { TriggerState } from './tables.js';

/**
 * Workflow triggers (your system → GHL): a named per-location GHL workflow "Inbound Webhook" URL; a POST to the
 * bridge stores the payload and a job forwards it there with retries (docs/ghl-behaviour.md#workflow-inbound-webhook).
 */
export const JOB_TRIGGER = 'pipelines.trigger';

/** Trigger names: what a caller puts in the path. */
export const TRIGGER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `…/hooks/<locationId>/webhook-trigger/<triggerId>` (any host: white-label domains, the emulator). */
const HOOK_PATH = /\/hooks\/([A-Za-z0-9_-]{1,64})\/webhook-trigger\/([A-Za-z0-9_-]{8,128})\/?$/;

export class TriggerConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'TriggerConfigError';
  }
}

/** Checks a GHL workflow inbound-webhook URL; returns it normalised. */
export function parseHookUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TriggerConfigError(
      'url',
      'url: expected an absolute URL such as https://services.leadconnectorhq.com/hooks/<locationId>/webhook-trigger/<id>',
    );
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new TriggerConfigError('url', 'url: expected an http(s) URL');
  if (!HOOK_PATH.test(u.pathname))
    throw new TriggerConfigError(
      'url',
      "url: expected GHL's workflow inbound-webhook path …/hooks/<locationId>/webhook-trigger/<id> (copy it from the workflow's Inbound Webhook trigger)",
    );
  if (u.username || u.password) throw new TriggerConfigError('url', 'url: must not contain credentials');
  return u.toString();
}

/** The URL with its secret part (the trigger id, and any query) masked: safe for listings and logs. */
export function maskHookUrl(url: string): string {
  const u = new URL(url);
  const m = HOOK_PATH.exec(u.pathname)!;
  const id = m[2]!;
  const prefix = u.pathname.slice(0, m.index);
  return `${u.origin}${prefix}/hooks/${m[1]}/webhook-trigger/****${id.slice(-4)}${u.search ? '?…' : ''}`;
}

const aad = (locationId: string, name: string) => `trigger_configs:${locationId}:${name}`;

export interface TriggerView {
  locationId: string;
  name: string;
  /** Masked. */
  url: string;
  createdAt: Date;
  updatedAt: Date;
}

export async function setTrigger(
  db: Db,
  ring: KeyRing,
  locationId: string,
  name: string,
  url: string,
): Promise<TriggerView> {
  if (!TRIGGER_NAME.test(name))
    throw new TriggerConfigError('name', 'name: expected 1–64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)');
  const clean = parseHookUrl(url);
  const enc = encrypt(ring, clean, aad(locationId, name));
  const masked = maskHookUrl(clean);
  const row = await db
    .insertInto('trigger_configs')
    .values({ location_id: locationId, name, url_enc: enc, url_masked: masked, key_id: keyIdOf(enc) ?? null })
    .onConflict((oc) =>
      oc.columns(['location_id', 'name']).doUpdateSet({
        url_enc: enc,
        url_masked: masked,
        key_id: keyIdOf(enc) ?? null,
        updated_at: sql<Date>`now()`,
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
  return view(row);
}

const view = (r: { location_id: string; name: string; url_masked: string; created_at: Date; updated_at: Date }) => ({
  locationId: r.location_id,
  name: r.name,
  url: r.url_masked,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export async function listTriggers(db: Db, locationId?: string): Promise<TriggerView[]> {
  let q = db.selectFrom('trigger_configs').selectAll().orderBy('location_id').orderBy('name');
  if (locationId) q = q.where('location_id', '=', locationId);
  return (await q.execute()).map(view);
}

export async function deleteTrigger(db: Db, locationId: string, name: string): Promise<boolean> {
  const r = await db
    .deleteFrom('trigger_configs')
    .where('location_id', '=', locationId)
    .where('name', '=', name)
    .executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** `ghl-bridge keys rotate`: re-encrypts trigger URLs made with an older key; returns how many changed. */
export async function rotateTriggerKeys(db: Db, ring: KeyRing): Promise<number> {
  let n = 0;
  for (const r of await db.selectFrom('trigger_configs').select(['location_id', 'name', 'url_enc']).execute()) {
    const again = reencrypt(ring, r.url_enc, aad(r.location_id, r.name));
    if (!again) continue;
    await db
      .updateTable('trigger_configs')
      .set({ url_enc: again, key_id: keyIdOf(again) ?? null })
      .where('location_id', '=', r.location_id)
      .where('name', '=', r.name)
      .where('url_enc', '=', r.url_enc)
      .execute();
    n++;
  }
  return n;
}

async function triggerUrl(db: Db, ring: KeyRing, locationId: string, name: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('trigger_configs')
    .select('url_enc')
    .where('location_id', '=', locationId)
    .where('name', '=', name)
    .executeTakeFirst();
  if (!row) return undefined;
  const url = decrypt(ring, row.url_enc, aad(locationId, name));
  registerSecret(url); // scrubbed from every log line from here on
  return url;
}

export async function triggerExists(db: Db, locationId: string, name: string): Promise<boolean> {
  const row = await db
    .selectFrom('trigger_configs')
    .select('name')
    .where('location_id', '=', locationId)
    .where('name', '=', name)
    .executeTakeFirst();
  return !!row;
}

/** Stable JSON (keys sorted) for the idempotency body comparison. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

export const bodyHash = (payload: unknown) => createHash('sha256').update(canonical(payload)).digest('hex');

export interface TriggerRequestView {
  id: number;
  locationId: string;
  name: string;
  idempotencyKey: string;
  state: TriggerState;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  receivedAt: Date;
  deliveredAt: Date | null;
}

type RequestRow = {
  id: number;
  location_id: string;
  name: string;
  idempotency_key: string;
  state: TriggerState;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  received_at: Date;
  delivered_at: Date | null;
};
const requestView = (r: RequestRow): TriggerRequestView => ({
  id: r.id,
  locationId: r.location_id,
  name: r.name,
  idempotencyKey: r.idempotency_key,
  state: r.state,
  attempts: r.attempts,
  lastStatus: r.last_status,
  lastError: r.last_error,
  receivedAt: r.received_at,
  deliveredAt: r.delivered_at,
});

export type AcceptResult =
  | { kind: 'accepted'; request: TriggerRequestView }
  | { kind: 'duplicate'; request: TriggerRequestView }
  | { kind: 'conflict'; request: TriggerRequestView };

/**
 * Stores a trigger call and enqueues its forwarding in one transaction. Same key + same body → the stored request
 * (nothing new); same key + another body → conflict.
 */
export async function acceptTrigger(
  db: Db,
  o: { locationId: string; name: string; idempotencyKey: string; payload: unknown; maxAttempts: number },
): Promise<AcceptResult> {
  const hash = bodyHash(o.payload);
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('trigger_requests')
      .values({
        location_id: o.locationId,
        name: o.name,
        idempotency_key: o.idempotencyKey,
        body_hash: hash,
        payload: JSON.stringify(o.payload),
      })
      .onConflict((oc) => oc.columns(['location_id', 'name', 'idempotency_key']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) {
      await triggerJob.enqueue(trx, { requestId: inserted.id }, { maxAttempts: o.maxAttempts });
      return { kind: 'accepted' as const, request: requestView(inserted) };
    }
    const existing = await trx
      .selectFrom('trigger_requests')
      .selectAll()
      .where('location_id', '=', o.locationId)
      .where('name', '=', o.name)
      .where('idempotency_key', '=', o.idempotencyKey)
      .executeTakeFirstOrThrow();
    return {
      kind: existing.body_hash === hash ? ('duplicate' as const) : ('conflict' as const),
      request: requestView(existing),
    };
  });
}

export async function getTriggerRequest(
  db: Db,
  locationId: string,
  id: number,
): Promise<TriggerRequestView | undefined> {
  const r = await db
    .selectFrom('trigger_requests')
    .selectAll()
    .where('id', '=', id)
    .where('location_id', '=', locationId)
    .executeTakeFirst();
  return r ? requestView(r) : undefined;
}

/** Recent trigger calls, newest first (console, admin API). */
export async function listTriggerRequests(
  db: Db,
  f: { locationId?: string | undefined; name?: string | undefined; state?: TriggerState | undefined; limit?: number },
): Promise<TriggerRequestView[]> {
  let q = db
    .selectFrom('trigger_requests')
    .select([
      'id',
      'location_id',
      'name',
      'idempotency_key',
      'state',
      'attempts',
      'last_status',
      'last_error',
      'received_at',
      'delivered_at',
    ])
    .orderBy('id', 'desc')
    .limit(f.limit ?? 100);
  if (f.locationId) q = q.where('location_id', '=', f.locationId);
  if (f.name) q = q.where('name', '=', f.name);
  if (f.state) q = q.where('state', '=', f.state);
  return (await q.execute()).map((r) => requestView({ ...r, id: Number(r.id), attempts: Number(r.attempts) }));
}

export interface TriggerRuntime {
  db: Db;
  ring: KeyRing;
  timeoutMs: number;
  metrics?: PipelineMetrics | undefined;
}

export interface TriggerSettings {
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
}

/** 4xx answers retrying cannot change (the hook is gone or refuses this payload); 408 and 429 are transient. */
const permanent = (status: number) => status >= 400 && status < 500 && status !== 408 && status !== 429;

async function record(db: Db, id: number, patch: { status: number | null; error: string | null }): Promise<void> {
  await db
    .updateTable('trigger_requests')
    .set({
      attempts: sql<number>`attempts + 1`,
      last_status: patch.status,
      last_error: patch.error,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .execute();
}

export const triggerJob = defineJob<{ requestId: number }, TriggerRuntime>({
  kind: JOB_TRIGGER,
  payload: z.object({ requestId: z.number().int() }),
  async perform({ requestId }, job, { deps, signal }) {
    const db = deps.db;
    const req = await db.selectFrom('trigger_requests').selectAll().where('id', '=', requestId).executeTakeFirst();
    if (!req || req.state === 'delivered') return;
    // A dead request runs again only when an operator retried its job (`ghl-bridge jobs retry`): pending again.
    if (req.state === 'dead')
      await db
        .updateTable('trigger_requests')
        .set({ state: 'pending', updated_at: sql<Date>`now()` })
        .where('id', '=', requestId)
        .execute();
    const url = await triggerUrl(db, deps.ring, req.location_id, req.name);
    if (!url) {
      await record(db, requestId, {
        status: null,
        error: `no trigger named ${req.name} is configured for this location`,
      });
      throw new PermanentJobError(`no trigger named ${req.name} is configured for location ${req.location_id}`);
    }
    let status: number;
    let text: string;
    let retryAfter: string | null = null;
    const m = deps.metrics;
    const started = performance.now();
    const seconds = (outcome: 'ok' | 'error') =>
      m?.triggerSeconds.observe({ outcome }, (performance.now() - started) / 1000);
    // Counted as retried when the queue runs it again (not a permanent refusal, attempts left); failed in onFailed.
    const retried = () => {
      if (job.attempts < job.maxAttempts) m?.triggers.inc({ name: req.name, outcome: 'retried' });
    };
    try {
      [status, text, retryAfter] = await withDeadline(deps.timeoutMs, signal, async (s) => {
        const r = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(req.payload),
          signal: s,
          redirect: 'manual',
        });
        return [r.status, await r.text(), r.headers.get('retry-after')] as const;
      });
    } catch (e) {
      if (signal.aborted) throw e;
      seconds('error');
      const msg = `network error: ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message}`;
      await record(db, requestId, { status: null, error: msg });
      retried();
      throw new Error(msg);
    }
    seconds(status >= 200 && status < 300 ? 'ok' : 'error');
    if (status >= 200 && status < 300) {
      await db
        .updateTable('trigger_requests')
        .set({
          state: 'delivered',
          attempts: sql<number>`attempts + 1`,
          last_status: status,
          last_error: null,
          delivered_at: sql<Date>`now()`,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', requestId)
        .execute();
      m?.triggers.inc({ name: req.name, outcome: 'forwarded' });
      return;
    }
    const reason = `HTTP ${status}: ${text.slice(0, 200)}`;
    await record(db, requestId, { status, error: reason });
    if (permanent(status)) throw new PermanentJobError(`GHL refused the trigger: ${reason}`);
    retried();
    if (status === 429 && retryAfter && /^\d+$/.test(retryAfter))
      throw new RetryLaterError(Math.min(Number(retryAfter), 3600) * 1000, `GHL asked to retry later: ${reason}`);
    throw new Error(reason);
  },
  async onFailed({ requestId }, _job, err, { db, deps }) {
    const reason = err instanceof Error ? err.message : String(err);
    const r = await db
      .updateTable('trigger_requests')
      .set({
        state: 'dead',
        last_error: reason.slice(0, 1000),
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', requestId)
      .where('state', '=', 'pending')
      .returning('name')
      .executeTakeFirst();
    if (r) deps.metrics?.triggers.inc({ name: r.name, outcome: 'failed' });
  },
});
