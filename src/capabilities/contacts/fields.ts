import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { DbOrTrx } from '../../infra/queue/index.js';
import type { GhlClient, CallOptions } from '../../platform/ghl/client.js';
import { normalizeE164 } from '../channels/phone.js';
import type { Selectable } from 'kysely';
import type { ContactsFieldsTable } from './tables.js';
import './tables.js';

/** GHL custom field data types (spec apps/locations.json, create-custom-field). */
export const DATA_TYPES = [
  'TEXT',
  'LARGE_TEXT',
  'NUMERICAL',
  'PHONE',
  'MONETORY',
  'CHECKBOX',
  'SINGLE_OPTIONS',
  'MULTIPLE_OPTIONS',
  'DATE',
  'RADIO',
  'EMAIL',
  'TEXTBOX_LIST',
  'FILE_UPLOAD',
] as const;
export type DataType = (typeof DATA_TYPES)[number];
/** Types a push can write (lists of text boxes and files have no plain value). */
export const PUSHABLE_TYPES: readonly string[] = DATA_TYPES.filter((t) => t !== 'TEXTBOX_LIST' && t !== 'FILE_UPLOAD');
const OPTION_TYPES = new Set(['SINGLE_OPTIONS', 'RADIO', 'MULTIPLE_OPTIONS', 'CHECKBOX']);
const MULTI_TYPES = new Set(['MULTIPLE_OPTIONS', 'CHECKBOX']);

export const LOGICAL_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** A declared logical field (API / CLI input). */
export interface FieldDeclaration {
  logical: string;
  dataType: string;
  /** GHL field key to match (`contact.` prefix optional); default `contact.<logical>`. */
  fieldKey?: string | undefined;
  /** GHL field name to match (and to create with); default the logical name in words. */
  name?: string | undefined;
  options?: string[] | undefined;
  /** Pin to this GHL custom field id (skips discovery while the field exists). */
  fieldId?: string | undefined;
}

export interface MappedField {
  logical: string;
  dataType: string;
  fieldKey: string;
  name: string;
  options: string[] | null;
  pinned: boolean;
  ghl: {
    id: string;
    fieldKey: string | null;
    name: string | null;
    dataType: string | null;
    options: string[] | null;
  } | null;
  refreshedAt: Date | null;
}

export interface Mapping {
  locationId: string;
  region: string;
  regionSource: 'setting' | 'location' | 'default';
  allowDuplicates: boolean | null;
  createMissing: boolean;
  refreshedAt: Date | null;
  error: string | null;
  fields: MappedField[];
}

export class MappingInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const keyOf = (logical: string, fieldKey: string | null | undefined) => {
  const k = fieldKey ?? logical;
  return k.startsWith('contact.') ? k : `contact.${k}`;
};
const nameOf = (logical: string, name: string | null | undefined) =>
  name ?? logical.replace(/_/g, ' ').replace(/\b[a-z]/g, (c) => c.toUpperCase());
const snake = (s: string) =>
  s
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');

export function toMapped(r: Selectable<ContactsFieldsTable>): MappedField {
  return {
    logical: r.logical,
    dataType: r.data_type,
    fieldKey: keyOf(r.logical, r.field_key),
    name: nameOf(r.logical, r.field_name),
    options: r.options,
    pinned: r.pinned,
    ghl: r.ghl_field_id
      ? {
          id: r.ghl_field_id,
          fieldKey: r.ghl_field_key,
          name: r.ghl_name,
          dataType: r.ghl_data_type,
          options: r.ghl_options,
        }
      : null,
    refreshedAt: r.refreshed_at,
  };
}

export async function getMapping(db: DbOrTrx, locationId: string, defaultRegion: string): Promise<Mapping> {
  const [loc, rows] = await Promise.all([
    db.selectFrom('contacts_locations').selectAll().where('location_id', '=', locationId).executeTakeFirst(),
    db.selectFrom('contacts_fields').selectAll().where('location_id', '=', locationId).orderBy('logical').execute(),
  ]);
  const region = loc?.region ?? loc?.ghl_country ?? defaultRegion;
  return {
    locationId,
    region: region.toUpperCase(),
    regionSource: loc?.region ? 'setting' : loc?.ghl_country ? 'location' : 'default',
    allowDuplicates: loc?.allow_duplicates ?? null,
    createMissing: loc?.create_missing ?? false,
    refreshedAt: loc?.mapping_refreshed_at ?? null,
    error: loc?.mapping_error ?? null,
    fields: rows.map(toMapped),
  };
}

async function ensureLocation(db: DbOrTrx, locationId: string): Promise<void> {
  await db
    .insertInto('contacts_locations')
    .values({ location_id: locationId, totals: JSON.stringify(zeroCounts()) })
    .onConflict((oc) => oc.column('location_id').doNothing())
    .execute();
}

export const zeroCounts = () => ({ created: 0, updated: 0, unchanged: 0, conflict: 0, failed: 0 });

/** Checks a declaration; throws MappingInputError naming the field. */
export function checkDeclaration(d: FieldDeclaration): void {
  if (!LOGICAL_NAME.test(d.logical))
    throw new MappingInputError('logical', 'expected a logical name: a lower-case letter, then up to 63 of a-z 0-9 _');
  if (!PUSHABLE_TYPES.includes(d.dataType))
    throw new MappingInputError('dataType', `expected one of ${PUSHABLE_TYPES.join(', ')}`);
  if (OPTION_TYPES.has(d.dataType) && d.options !== undefined && d.options.length === 0)
    throw new MappingInputError('options', 'expected at least one option for an option field');
  if (!OPTION_TYPES.has(d.dataType) && d.options?.length)
    throw new MappingInputError('options', `expected no options for a ${d.dataType} field`);
}

/** Declares (or changes) a logical field of a location. A pinned field id is taken as the mapping now. */
export async function declareField(db: DbOrTrx, locationId: string, d: FieldDeclaration): Promise<void> {
  checkDeclaration(d);
  await ensureLocation(db, locationId);
  const values = {
    data_type: d.dataType,
    field_key: d.fieldKey ?? null,
    field_name: d.name ?? null,
    options: d.options ? JSON.stringify(d.options) : null,
    pinned: d.fieldId !== undefined,
    ...(d.fieldId !== undefined
      ? { ghl_field_id: d.fieldId, ghl_field_key: null, ghl_name: null, ghl_data_type: null, ghl_options: null }
      : {}),
    updated_at: sql<Date>`now()`,
  };
  await db
    .insertInto('contacts_fields')
    .values({ location_id: locationId, logical: d.logical, ...values })
    .onConflict((oc) => oc.columns(['location_id', 'logical']).doUpdateSet(values))
    .execute();
}

export async function removeField(db: DbOrTrx, locationId: string, logical: string): Promise<boolean> {
  const r = await db
    .deleteFrom('contacts_fields')
    .where('location_id', '=', locationId)
    .where('logical', '=', logical)
    .executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function setLocationSettings(
  db: DbOrTrx,
  locationId: string,
  s: { region?: string | null | undefined; createMissing?: boolean | undefined },
): Promise<void> {
  await ensureLocation(db, locationId);
  const set: { region?: string | null; create_missing?: boolean } = {};
  if (s.region !== undefined) set.region = s.region === null ? null : s.region.toUpperCase();
  if (s.createMissing !== undefined) set.create_missing = s.createMissing;
  if (Object.keys(set).length)
    await db.updateTable('contacts_locations').set(set).where('location_id', '=', locationId).execute();
}

interface GhlField {
  id: string;
  name?: string;
  fieldKey?: string;
  dataType?: string;
  picklistOptions?: string[];
  model?: string;
}

export interface RefreshResult {
  mapped: number;
  created: string[];
  missing: string[];
}

/**
 * Reads the location (country, duplicate setting) and its contact custom fields from GHL, then maps every declared
 * logical field: a pinned id while it exists, else the field whose key matches, else the one whose name matches
 * (compared snake-cased). Missing fields are created with their declared type when `create` (or the location's
 * createMissing) says so. The result is written to the cache.
 */
export async function refreshMapping(
  db: Db,
  ghl: GhlClient,
  locationId: string,
  o: { create?: boolean | undefined; opts: Omit<CallOptions, 'installation'> },
): Promise<RefreshResult> {
  await ensureLocation(db, locationId);
  const call = { ...o.opts, installation: { locationId } };
  try {
    const locRes = (await ghl.locations.get(locationId, call)) as {
      location?: { country?: string; settings?: { allowDuplicateContact?: boolean } };
    };
    const country = locRes.location?.country;
    const list = (await ghl.customFields.list(locationId, { ...call, model: 'contact' })) as {
      customFields?: GhlField[];
    };
    const ghlFields = (list.customFields ?? []).filter((f) => !f.model || f.model === 'contact');
    const settings = await db
      .selectFrom('contacts_locations')
      .select('create_missing')
      .where('location_id', '=', locationId)
      .executeTakeFirstOrThrow();
    const create = o.create ?? settings.create_missing;
    const rows = await db.selectFrom('contacts_fields').selectAll().where('location_id', '=', locationId).execute();
    const out: RefreshResult = { mapped: 0, created: [], missing: [] };
    for (const r of rows) {
      const key = keyOf(r.logical, r.field_key);
      const name = nameOf(r.logical, r.field_name);
      let f: GhlField | undefined;
      if (r.pinned && r.ghl_field_id) f = ghlFields.find((g) => g.id === r.ghl_field_id);
      f ??= ghlFields.find((g) => g.fieldKey && keyOf(r.logical, g.fieldKey) === key);
      f ??= ghlFields.find((g) => g.name && snake(g.name) === snake(name));
      if (!f && create) {
        const body = {
          name,
          dataType: r.data_type,
          model: 'contact',
          ...(r.options?.length ? { options: r.options } : {}),
        } as Parameters<GhlClient['customFields']['create']>[1];
        const res = (await ghl.customFields.create(locationId, body, call)) as { customField?: GhlField };
        if (res.customField?.id) {
          f = res.customField;
          out.created.push(r.logical);
        }
      }
      if (f) out.mapped++;
      else out.missing.push(r.logical);
      await db
        .updateTable('contacts_fields')
        .set({
          ghl_field_id: f?.id ?? null,
          ghl_field_key: f?.fieldKey ?? null,
          ghl_name: f?.name ?? null,
          ghl_data_type: f?.dataType ?? null,
          ghl_options: f?.picklistOptions?.length ? JSON.stringify(f.picklistOptions) : null,
          pinned: r.pinned && f?.id === r.ghl_field_id,
          refreshed_at: sql<Date>`now()`,
        })
        .where('location_id', '=', locationId)
        .where('logical', '=', r.logical)
        .execute();
    }
    await db
      .updateTable('contacts_locations')
      .set({
        ghl_country: country ? country.toUpperCase() : null,
        allow_duplicates: locRes.location?.settings?.allowDuplicateContact ?? null,
        mapping_refreshed_at: sql<Date>`now()`,
        mapping_error: out.missing.length
          ? `no GHL custom field matches ${out.missing.join(', ')} (refresh with create to make them)`
          : null,
      })
      .where('location_id', '=', locationId)
      .execute();
    return out;
  } catch (e) {
    await db
      .updateTable('contacts_locations')
      .set({ mapping_error: (e instanceof Error ? e.message : String(e)).slice(0, 1000) })
      .where('location_id', '=', locationId)
      .execute();
    throw e;
  }
}

export type FieldValue = string | number | boolean | string[] | null;

/**
 * Checks one logical value against its field's type (GHL's when known, else the declared one) and options:
 * the value to send, or the reason it is refused (`expected …`).
 */
export function checkValue(
  f: MappedField,
  value: unknown,
  region: string,
): { ok: true; value: FieldValue } | { ok: false; message: string } {
  if (value === null) return { ok: true, value: null };
  const type = f.ghl?.dataType ?? f.dataType;
  const options = f.ghl?.options ?? f.options;
  const bad = (message: string) => ({ ok: false as const, message });
  switch (type) {
    case 'TEXT':
    case 'LARGE_TEXT':
      if (typeof value === 'string') return { ok: true, value };
      if (typeof value === 'number' && Number.isFinite(value)) return { ok: true, value: String(value) };
      return bad(`expected text for ${type} field "${f.name}"`);
    case 'NUMERICAL':
    case 'MONETORY': {
      const n =
        typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isFinite(n))
        return bad(`expected a number for ${type} field "${f.name}", got ${JSON.stringify(value)}`);
      return { ok: true, value: n };
    }
    case 'DATE': {
      if (
        typeof value !== 'string' ||
        !/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) ||
        Number.isNaN(Date.parse(value))
      )
        return bad(`expected a date (YYYY-MM-DD or ISO 8601) for DATE field "${f.name}"`);
      return { ok: true, value };
    }
    case 'EMAIL':
      if (typeof value !== 'string' || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value))
        return bad(`expected an email address for EMAIL field "${f.name}"`);
      return { ok: true, value: value.toLowerCase() };
    case 'PHONE': {
      if (typeof value !== 'string') return bad(`expected a phone number for PHONE field "${f.name}"`);
      const r = normalizeE164(value, region);
      if (!r.ok) return bad(`expected a phone number for PHONE field "${f.name}": ${r.error.message}`);
      return { ok: true, value: r.e164 };
    }
    case 'SINGLE_OPTIONS':
    case 'RADIO':
    case 'MULTIPLE_OPTIONS':
    case 'CHECKBOX': {
      const multi = MULTI_TYPES.has(type);
      const list = Array.isArray(value) ? value : [value];
      if (!multi && Array.isArray(value)) return bad(`expected one option for ${type} field "${f.name}"`);
      if (list.some((v) => typeof v !== 'string')) return bad(`expected option text for ${type} field "${f.name}"`);
      const strs = list as string[];
      if (options?.length) {
        const unknown = strs.find((v) => !options.includes(v));
        if (unknown !== undefined)
          return bad(
            `expected one of ${options.map((o) => JSON.stringify(o)).join(', ')} for ${type} field "${f.name}", got ${JSON.stringify(unknown)}`,
          );
      }
      return { ok: true, value: multi ? strs : strs[0]! };
    }
    default:
      return bad(`the push cannot write ${type} field "${f.name}"`);
  }
}
