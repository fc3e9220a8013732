import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import type { Counter } from 'prom-client';
import type { Db } from '../../infra/db/index.js';
import type { Logger } from '../../infra/log/logger.js';
import {
  defineJob,
  enqueue,
  PRIORITY,
  RetryLaterError,
  type DbOrTrx,
  type JobContext,
} from '../../infra/queue/index.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import { locationKey } from '../../platform/keys.js';
import { normalizeE164 } from '../channels/phone.js';
import type { EventsService } from '../events/index.js';
import { checkValue, getMapping, refreshMapping, zeroCounts, type FieldValue, type Mapping } from './fields.js';
import type { PushOutcome, PushRecord, SyncStatus } from './tables.js';
import './tables.js';

export const JOB_CONTACTS_PUSH = 'contacts.push';
export const JOB_CONTACTS_REFRESH = 'contacts.refresh-mapping';
/** Records in one push request. */
export const MAX_BATCH = 1000;

export interface ContactsRuntime {
  db: Db;
  log: Logger;
  ghl: () => GhlClient;
  defaultRegion: string;
  bus: () => EventsService | undefined;
  notify: () => void;
  metrics: { outcomes: Counter<'outcome'>; apiCalls: Counter<'op'> };
  /** Refreshes already run by this replica's jobs, per batch (and stale ids): at most one each. */
  refreshed?: Map<string, Promise<void>>;
}

/**
 * Refreshes the location's mapping once per batch: the first record that needs it (a field without a GHL id, or GHL
 * rejecting a cached id) reads GHL; the batch's other records wait for that and then read the cache.
 */
function refreshOnce(
  rt: ContactsRuntime,
  loc: string,
  key: string,
  opts: Parameters<typeof refreshMapping>[3]['opts'],
): Promise<void> {
  const done = (rt.refreshed ??= new Map());
  let p = done.get(key);
  if (!p) {
    if (done.size > 1000) done.clear();
    p = refreshMapping(rt.db, rt.ghl(), loc, { opts }).then(() => {
      rt.metrics.apiCalls.inc({ op: 'customFields.list' });
    });
    p.catch(() => done.delete(key));
    done.set(key, p);
  }
  return p;
}

const shortText = z.string().trim().min(1, 'expected a non-empty text').max(200, 'expected at most 200 characters');
/** One record as the caller sends it; checked per record so one bad record fails alone. */
export const recordSchema = z
  .object({
    externalId: z
      .string('expected the caller’s record id')
      .min(1, 'expected a non-empty id')
      .max(256, 'expected at most 256 characters')
      .regex(/^\S+$/, 'expected an id without whitespace'),
    firstName: shortText.optional(),
    lastName: shortText.optional(),
    name: shortText.optional(),
    email: z.email('expected an email address').max(320, 'expected at most 320 characters').optional(),
    phone: z.string('expected a phone number').min(3, 'expected a phone number').max(40).optional(),
    companyName: shortText.optional(),
    source: shortText.optional(),
    tags: z
      .array(z.string().trim().min(1, 'expected a non-empty tag').max(100, 'expected at most 100 characters'))
      .max(100, 'expected at most 100 tags')
      .default([]),
    customFields: z
      .record(
        z.string(),
        z.union([z.string(), z.number(), z.boolean(), z.array(z.string()), z.null()]),
        'expected an object of logical field name → value',
      )
      .default({}),
  })
  .strict()
  .meta({ id: 'ContactPushRecord' });

export type RecordInput = z.input<typeof recordSchema>;

export interface EdgeResult {
  record: PushRecord | null;
  /** `records[3].email: expected an email address` */
  error: string | null;
}

const zodPath = (p: PropertyKey[]) => p.map((x) => (typeof x === 'number' ? `[${x}]` : `.${String(x)}`)).join('');

/** Validates and normalises the records of a push against the location's mapping (no GHL call). */
export function checkRecords(raw: unknown[], mapping: Mapping): EdgeResult[] {
  const fields = new Map(mapping.fields.map((f) => [f.logical, f]));
  const seen = new Map<string, number>();
  return raw.map((r, i) => {
    const at = `records[${i}]`;
    const fail = (path: string, message: string): EdgeResult => ({ record: null, error: `${at}${path}: ${message}` });
    const p = recordSchema.safeParse(r);
    if (!p.success) {
      const issue = p.error.issues[0]!;
      return fail(
        issue.code === 'unrecognized_keys' ? `.${issue.keys[0]}` : zodPath(issue.path),
        issue.code === 'unrecognized_keys' ? 'unknown field (custom fields go in customFields)' : issue.message,
      );
    }
    const v = p.data;
    const first = seen.get(v.externalId);
    if (first !== undefined) return fail('.externalId', `duplicate of records[${first}] in this batch`);
    seen.set(v.externalId, i);
    if (v.email === undefined && v.phone === undefined)
      return fail('.email', 'expected an email or a phone (GHL matches contacts on them)');
    let phone: string | undefined;
    if (v.phone !== undefined) {
      const n = normalizeE164(v.phone, mapping.region);
      if (!n.ok) return fail('.phone', `expected a phone number: ${n.error.message}`);
      phone = n.e164;
    }
    const customFields: Record<string, FieldValue> = {};
    for (const [logical, value] of Object.entries(v.customFields)) {
      const f = fields.get(logical);
      if (!f)
        return fail(
          `.customFields.${logical}`,
          `unknown logical field (declared for this location: ${[...fields.keys()].join(', ') || 'none'})`,
        );
      const c = checkValue(f, value, mapping.region);
      if (!c.ok) return fail(`.customFields.${logical}`, c.message);
      customFields[logical] = c.value;
    }
    const rec: PushRecord = {
      externalId: v.externalId,
      tags: [...new Set(v.tags)],
      customFields,
    };
    for (const k of ['firstName', 'lastName', 'name', 'companyName', 'source'] as const)
      if (v[k] !== undefined) rec[k] = v[k];
    if (v.email !== undefined) rec.email = v.email.toLowerCase();
    if (phone !== undefined) rec.phone = phone;
    return { record: rec, error: null };
  });
}

const json = (v: unknown) => JSON.stringify(v);

/**
 * Stores a batch, its records (those refused at the edge already `failed`) and one push job per valid record, in
 * the caller's transaction. Returns the batch id.
 */
export async function storeBatch(
  trx: DbOrTrx,
  rt: Pick<ContactsRuntime, 'bus'>,
  locationId: string,
  results: EdgeResult[],
  raw: unknown[],
): Promise<string> {
  const id = `cb_${randomBytes(12).toString('base64url')}`;
  const failed = results.filter((r) => r.error).length;
  await trx
    .insertInto('contacts_batches')
    .values({ id, location_id: locationId, total: results.length, done: failed, failed })
    .execute();
  const extOf = (i: number) => {
    const e = (raw[i] as { externalId?: unknown } | null)?.externalId;
    return typeof e === 'string' && e ? e.slice(0, 256) : `#${i}`;
  };
  const rows = results.map((r, i) => ({
    batch_id: id,
    idx: i,
    location_id: locationId,
    external_id: r.record?.externalId ?? extOf(i),
    record: r.record ? json(r.record) : null,
    outcome: r.error ? ('failed' as const) : null,
    reason: r.error,
    contact_id: null,
    done_at: r.error ? new Date() : null,
  }));
  for (let i = 0; i < rows.length; i += 500)
    await trx
      .insertInto('contacts_batch_records')
      .values(rows.slice(i, i + 500))
      .execute();
  const jobs = results.flatMap((r, i) =>
    r.record ? [pushJob.job({ locationId, batchId: id, idx: i, externalId: r.record.externalId })] : [],
  );
  for (let i = 0; i < jobs.length; i += 500) await enqueue(trx, jobs.slice(i, i + 500));
  const bus = rt.bus();
  if (bus)
    for (const r of rows.filter((x) => x.outcome === 'failed'))
      await bus.publish(trx, {
        type: 'contact.synced',
        locationId,
        data: {
          locationId,
          batchId: id,
          externalId: r.external_id,
          contactId: null,
          outcome: 'failed',
          reason: r.reason,
        },
      });
  if (failed === results.length) await finishBatch(trx, id);
  return id;
}

/** Per-record ordering: two batches carrying the same external id are applied in the order they were stored. */
export const recordKey = (locationId: string, externalId: string) => `contacts:${locationId}:${externalId}`;

const pushPayload = z.object({
  locationId: z.string().min(1),
  batchId: z.string().min(1),
  idx: z.number().int().nonnegative(),
  externalId: z.string().min(1),
});

export const pushJob = defineJob<z.infer<typeof pushPayload>, ContactsRuntime>({
  kind: JOB_CONTACTS_PUSH,
  payload: pushPayload,
  orderingKey: (p) => recordKey(p.locationId, p.externalId),
  scope: (p) => locationKey(p.locationId),
  dedupeKey: (p) => `${JOB_CONTACTS_PUSH}:${p.batchId}:${p.idx}`,
  priority: PRIORITY.bulk,
  maxAttempts: 10,
  perform: (p, _job, h) => pushRecord(h.deps, p, h),
  onFailed: async (p, _job, err, h) => {
    await h.db.transaction().execute((trx) =>
      recordOutcome(trx, h.deps, p.locationId, p.batchId, p.idx, p.externalId, {
        outcome: 'failed',
        contactId: null,
        reason: errText(err),
      }),
    );
  },
});

const refreshPayload = z.object({ locationId: z.string().min(1), create: z.boolean().optional() });

/** `contacts.refresh-mapping`: the CLI's refresh, run by a bridge (it holds the GHL tokens). */
export const refreshJob = defineJob<z.infer<typeof refreshPayload>, ContactsRuntime>({
  kind: JOB_CONTACTS_REFRESH,
  payload: refreshPayload,
  scope: (p) => locationKey(p.locationId),
  dedupeKey: (p) => `${JOB_CONTACTS_REFRESH}:${p.locationId}`,
  maxAttempts: 5,
  perform: async (p, _job, h) => {
    await refreshMapping(h.deps.db, h.deps.ghl(), p.locationId, {
      create: p.create,
      opts: { lane: 'bulk', signal: h.signal },
    });
  },
});

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 1000);

const sortTags = (t: string[]) => [...new Set(t)].sort();

/** Hash of what a PUT writes: standard fields and custom field values by GHL field id. */
export function fieldsHash(r: PushRecord, ids: Record<string, string>): string {
  const cf = Object.keys(r.customFields)
    .sort()
    .map((k) => [ids[k] ?? `?${k}`, r.customFields[k]]);
  const std = ['firstName', 'lastName', 'name', 'email', 'phone', 'source'].map(
    (k) => r[k as keyof PushRecord] ?? null,
  );
  return createHash('sha256')
    .update(JSON.stringify([std, cf]))
    .digest('base64url');
}

class Outcome {
  constructor(
    readonly outcome: PushOutcome,
    readonly contactId: string | null,
    readonly reason: string | null,
  ) {}
}

/** GHL's answer when a custom field id is not one of the location's (the mapping is stale). */
const unknownFieldError = (e: unknown) =>
  e instanceof GhlApiError && (e.status === 400 || e.status === 422) && /custom ?field/i.test(e.message);
const contactGoneError = (e: unknown) =>
  e instanceof GhlApiError && (e.status === 404 || (e.status === 400 && /contact not found/i.test(e.message)));

async function pushRecord(rt: ContactsRuntime, p: z.infer<typeof pushPayload>, h: JobContext<ContactsRuntime>) {
  const { db } = rt;
  const row = await db
    .selectFrom('contacts_batch_records')
    .select(['record', 'outcome'])
    .where('batch_id', '=', p.batchId)
    .where('idx', '=', p.idx)
    .executeTakeFirst();
  if (!row?.record || row.outcome) return;
  const rec = row.record;
  let result: Outcome;
  try {
    result = await apply(rt, p.locationId, p.batchId, rec, h, false);
  } catch (e) {
    if (e instanceof Outcome) result = e;
    else if (e instanceof RetryLaterError) throw e;
    else if (e instanceof GhlApiError && e.status >= 400 && e.status < 500 && e.status !== 429 && e.status !== 401)
      result = new Outcome('failed', null, `GHL refused it: ${e.message}`);
    else throw e;
  }
  await db.transaction().execute((trx) => recordOutcome(trx, rt, p.locationId, p.batchId, p.idx, p.externalId, result));
}

async function apply(
  rt: ContactsRuntime,
  loc: string,
  batchId: string,
  rec: PushRecord,
  h: JobContext<ContactsRuntime>,
  refreshed: boolean,
): Promise<Outcome> {
  const { db } = rt;
  const ghl = rt.ghl();
  const opts = { installation: { locationId: loc }, lane: 'bulk' as const, signal: h.signal, maxWaitMs: 5000 };
  const count = (op: string) => rt.metrics.apiCalls.inc({ op });
  let mapping = await getMapping(db, loc, rt.defaultRegion);
  const used = Object.keys(rec.customFields);
  const idsOf = (m: Mapping) => Object.fromEntries(m.fields.filter((f) => f.ghl).map((f) => [f.logical, f.ghl!.id]));
  let ids = idsOf(mapping);
  if (!refreshed && used.some((l) => !ids[l])) {
    await refreshOnce(rt, loc, batchId, opts);
    mapping = await getMapping(db, loc, rt.defaultRegion);
    ids = idsOf(mapping);
    refreshed = true;
  }
  const customFields: Array<{ id: string; field_value: unknown }> = [];
  for (const l of used) {
    const f = mapping.fields.find((x) => x.logical === l);
    if (!f) throw new Outcome('failed', null, `customFields.${l}: the logical field is no longer declared`);
    if (!f.ghl)
      throw new Outcome(
        'failed',
        null,
        `customFields.${l}: no custom field of this location matches (key ${f.fieldKey} or name "${f.name}"); declare its field id or refresh the mapping with create`,
      );
    // Checked again against the GHL field as now known (a refresh may have brought its real type and options).
    const c = checkValue(f, rec.customFields[l], mapping.region);
    if (!c.ok) throw new Outcome('failed', null, `customFields.${l}: ${c.message}`);
    customFields.push({ id: f.ghl.id, field_value: c.value === null ? '' : c.value });
  }
  const hash = fieldsHash(rec, ids);
  const tags = sortTags(rec.tags);
  const map = await db
    .selectFrom('contacts_map')
    .selectAll()
    .where('location_id', '=', loc)
    .where('external_id', '=', rec.externalId)
    .executeTakeFirst();
  const std = {
    ...(rec.firstName !== undefined ? { firstName: rec.firstName } : {}),
    ...(rec.lastName !== undefined ? { lastName: rec.lastName } : {}),
    ...(rec.name !== undefined ? { name: rec.name } : {}),
    ...(rec.email !== undefined ? { email: rec.email } : {}),
    ...(rec.phone !== undefined ? { phone: rec.phone } : {}),
    ...(rec.source !== undefined ? { source: rec.source } : {}),
    ...(customFields.length ? { customFields } : {}),
  };
  const company = rec.companyName ?? null;
  try {
    if (map) {
      const prevTags = sortTags(map.tags);
      const tagsSame = prevTags.join('\u0000') === tags.join('\u0000');
      const companySame = company === null || company === map.company_name;
      if (map.fields_hash === hash && tagsSame && companySame) return new Outcome('unchanged', map.contact_id, null);
      let contactId = map.contact_id;
      // A new phone for a mapped contact: GHL's duplicate rules may give it to another contact (as upsert does,
      // highlevel-api-docs #37); ask first rather than write a number another contact holds.
      if (rec.phone && rec.phone !== map.phone && mapping.allowDuplicates !== true) {
        const d = await ghl.contacts.findDuplicate({ locationId: loc, number: rec.phone }, opts);
        count('contacts.findDuplicate');
        const holder = d.contact?.id;
        if (holder && holder !== contactId)
          return new Outcome(
            'conflict',
            contactId,
            `phone: ${rec.phone} belongs to another GHL contact (${holder}) under the location's duplicate rules; contact ${contactId} not updated`,
          );
      }
      if (map.fields_hash !== hash) {
        try {
          await ghl.contacts.update(contactId, std as Parameters<GhlClient['contacts']['update']>[1], opts);
          count('contacts.update');
        } catch (e) {
          if (!contactGoneError(e)) throw e;
          // Deleted in GHL (and the ContactDelete event not seen yet): forget it and match again.
          await db
            .deleteFrom('contacts_map')
            .where('location_id', '=', loc)
            .where('external_id', '=', rec.externalId)
            .execute();
          return await apply(rt, loc, batchId, rec, h, refreshed);
        }
      }
      if (!companySame) {
        // PUT /contacts/{id} has no companyName (spec UpdateContactDto); upsert does, matched by the same email/phone.
        const r = await ghl.contacts.upsert(
          {
            locationId: loc,
            companyName: company!,
            ...(rec.email ? { email: rec.email } : { phone: rec.phone! }),
          } as Parameters<GhlClient['contacts']['upsert']>[0],
          opts,
        );
        count('contacts.upsert');
        const got = r.contact?.id;
        if (got && got !== contactId)
          return await saveMap(
            rt,
            loc,
            rec,
            contactId,
            null,
            prevTags,
            'conflict',
            `companyName: GHL's upsert matched contact ${got}, not the mapped ${contactId}; companyName not written`,
          );
      }
      const add = tags.filter((t) => !prevTags.includes(t));
      const remove = prevTags.filter((t) => !tags.includes(t));
      if (add.length) {
        await ghl.contacts.addTags(contactId, add, opts);
        count('contacts.addTags');
      }
      if (remove.length) {
        await ghl.contacts.removeTags(contactId, remove, opts);
        count('contacts.removeTags');
      }
      contactId = map.contact_id;
      return await saveMap(rt, loc, rec, contactId, hash, tags, 'updated', null);
    }

    // Not mapped: a contact the bridge already maps to another external id with this email/phone is a conflict.
    if (mapping.allowDuplicates !== true) {
      const other = await db
        .selectFrom('contacts_map')
        .select(['external_id', 'contact_id', 'email', 'phone'])
        .where('location_id', '=', loc)
        .where('external_id', '!=', rec.externalId)
        .where((eb) =>
          eb.or([
            ...(rec.email ? [eb('email', '=', rec.email)] : []),
            ...(rec.phone ? [eb('phone', '=', rec.phone)] : []),
          ]),
        )
        .executeTakeFirst();
      if (other) {
        const by = rec.email && other.email === rec.email ? `email ${rec.email}` : `phone ${rec.phone}`;
        return new Outcome(
          'conflict',
          other.contact_id,
          `GHL would match contact ${other.contact_id} by ${by}, which is mapped to external id ${other.external_id}; not overwritten`,
        );
      }
    }
    const r = await ghl.contacts.upsert(
      {
        locationId: loc,
        ...std,
        ...(company !== null ? { companyName: company } : {}),
        ...(mapping.allowDuplicates === true ? { createNewIfDuplicateAllowed: true } : {}),
      } as Parameters<GhlClient['contacts']['upsert']>[0],
      opts,
    );
    count('contacts.upsert');
    const contact = r.contact as { id?: string; phone?: string | null; email?: string | null } | undefined;
    const contactId = contact?.id;
    if (!contactId) throw new Error('GHL upsert answered without a contact id');
    const isNew = (r as { new?: boolean }).new === true;
    const taken = await db
      .selectFrom('contacts_map')
      .select('external_id')
      .where('location_id', '=', loc)
      .where('contact_id', '=', contactId)
      .executeTakeFirst();
    if (taken && taken.external_id !== rec.externalId)
      return new Outcome(
        'conflict',
        contactId,
        `GHL matched contact ${contactId}, which is mapped to external id ${taken.external_id}; the map was not changed`,
      );
    if (tags.length) {
      await ghl.contacts.addTags(contactId, tags, opts);
      count('contacts.addTags');
    }
    // GHL keeps the contact matched by the first field of the duplicate sequence and drops the other (issue #37).
    if (rec.phone) {
      const got = contact?.phone ? normalizeE164(contact.phone, mapping.region) : undefined;
      if (!got?.ok || got.e164 !== rec.phone)
        return await saveMap(
          rt,
          loc,
          { ...rec, phone: got?.ok ? got.e164 : undefined },
          contactId,
          null,
          tags,
          'conflict',
          `phone: GHL did not store ${rec.phone} on contact ${contactId} (it has ${contact?.phone ?? 'none'}): the number belongs to another contact under the location's duplicate rules`,
        );
    }
    return await saveMap(rt, loc, rec, contactId, hash, tags, isNew ? 'created' : 'updated', null);
  } catch (e) {
    if (e instanceof Outcome) throw e;
    if (!refreshed && unknownFieldError(e)) {
      // Once per batch and set of stale ids: records that sent the same ids share one refresh.
      await refreshOnce(rt, loc, `${batchId}:${customFields.map((f) => f.id).join(',')}`, opts);
      return await apply(rt, loc, batchId, rec, h, true);
    }
    throw e;
  }
}

async function saveMap(
  rt: ContactsRuntime,
  loc: string,
  rec: PushRecord,
  contactId: string,
  hash: string | null,
  tags: string[],
  outcome: PushOutcome,
  reason: string | null,
): Promise<Outcome> {
  const values = {
    contact_id: contactId,
    fields_hash: hash,
    tags: json(tags),
    email: rec.email ?? null,
    phone: rec.phone ?? null,
    company_name: rec.companyName ?? null,
    updated_at: sql<Date>`now()`,
  };
  try {
    await rt.db
      .insertInto('contacts_map')
      .values({ location_id: loc, external_id: rec.externalId, ...values })
      .onConflict((oc) => oc.columns(['location_id', 'external_id']).doUpdateSet(values))
      .execute();
  } catch (e) {
    // Another external id took this contact meanwhile (contacts_map_contact): report, do not overwrite.
    if (/contacts_map_contact|unique/i.test(errText(e)))
      return new Outcome(
        'conflict',
        contactId,
        `GHL matched contact ${contactId}, which another external id maps to meanwhile`,
      );
    throw e;
  }
  return new Outcome(outcome, contactId, reason);
}

/** Writes a record's outcome, counts it on its batch and finishes the batch with its last record. */
async function recordOutcome(
  trx: DbOrTrx,
  rt: Pick<ContactsRuntime, 'bus' | 'metrics'>,
  loc: string,
  batchId: string,
  idx: number,
  externalId: string,
  r: { outcome: PushOutcome; contactId: string | null; reason: string | null },
): Promise<void> {
  const upd = await trx
    .updateTable('contacts_batch_records')
    .set({ outcome: r.outcome, contact_id: r.contactId, reason: r.reason, done_at: sql<Date>`now()` })
    .where('batch_id', '=', batchId)
    .where('idx', '=', idx)
    .where('outcome', 'is', null)
    .executeTakeFirst();
  if (Number(upd.numUpdatedRows) === 0) return;
  const b = await trx
    .updateTable('contacts_batches')
    .set((eb) => ({ done: eb('done', '+', 1), [r.outcome]: eb(r.outcome, '+', 1) }))
    .where('id', '=', batchId)
    .returning(['done', 'total'])
    .executeTakeFirstOrThrow();
  rt.metrics.outcomes.inc({ outcome: r.outcome });
  const bus = rt.bus();
  if (bus)
    await bus.publish(trx, {
      type: 'contact.synced',
      locationId: loc,
      contactId: r.contactId,
      data: { locationId: loc, batchId, externalId, contactId: r.contactId, outcome: r.outcome, reason: r.reason },
    });
  if (b.done >= b.total) await finishBatch(trx, batchId);
}

/** The batch's status: success (nothing failed or in conflict), failed (nothing went through), else partial. */
export function batchStatus(c: Record<PushOutcome, number>): SyncStatus {
  const bad = c.failed + c.conflict;
  if (bad === 0) return 'success';
  return c.created + c.updated + c.unchanged === 0 ? 'failed' : 'partial';
}

async function finishBatch(trx: DbOrTrx, batchId: string): Promise<void> {
  const b = await trx
    .updateTable('contacts_batches')
    .set({ completed_at: sql<Date>`now()` })
    .where('id', '=', batchId)
    .where('completed_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
  if (!b) return;
  const counts = {
    created: b.created,
    updated: b.updated,
    unchanged: b.unchanged,
    conflict: b.conflict,
    failed: b.failed,
  };
  const status = batchStatus(counts);
  const last = await trx
    .selectFrom('contacts_batch_records')
    .select(['idx', 'external_id', 'outcome', 'reason'])
    .where('batch_id', '=', batchId)
    .where('outcome', 'in', ['failed', 'conflict'])
    .orderBy('idx', 'desc')
    .limit(1)
    .executeTakeFirst();
  const lastError = last
    ? `records[${last.idx}] (${last.external_id}) ${last.outcome}: ${last.reason ?? ''}`.slice(0, 1000)
    : null;
  await trx
    .insertInto('contacts_locations')
    .values({ location_id: b.location_id, totals: json(zeroCounts()) })
    .onConflict((oc) => oc.column('location_id').doNothing())
    .execute();
  await trx
    .updateTable('contacts_locations')
    .set({
      last_sync_at: sql<Date>`now()`,
      last_status: status,
      last_error: lastError,
      last_batch_id: batchId,
      last_counts: json(counts),
      totals: sql<string>`jsonb_build_object(
        'created', coalesce((totals->>'created')::int, 0) + ${counts.created}::int,
        'updated', coalesce((totals->>'updated')::int, 0) + ${counts.updated}::int,
        'unchanged', coalesce((totals->>'unchanged')::int, 0) + ${counts.unchanged}::int,
        'conflict', coalesce((totals->>'conflict')::int, 0) + ${counts.conflict}::int,
        'failed', coalesce((totals->>'failed')::int, 0) + ${counts.failed}::int)`,
      updated_at: sql<Date>`now()`,
    })
    .where('location_id', '=', b.location_id)
    .execute();
}
