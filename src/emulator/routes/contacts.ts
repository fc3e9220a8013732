import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { assertLocationAccess, type AuthContext } from '../auth.js';
import type { Ctx } from '../context.js';
import {
  changeTags,
  contactToApi,
  createContact,
  deleteContact,
  findDuplicate,
  normEmail,
  normPhone,
  updateContact,
  upsertContact,
  type ContactInput,
} from '../contacts-service.js';
import { badRequest, unprocessable } from '../errors.js';
import type { Contact } from '../state.js';
import { parseBody } from '../validate.js';
import { mustLocation, op, params, query } from './util.js';

const V = '2021-07-28';
const RD = { version: V, scopes: ['contacts.readonly'], access: 'location' } as const;
const WR = { version: V, scopes: ['contacts.write'], access: 'location' } as const;

const ns = z.string().nullable().optional();
const dnd = z.object({
  status: z.enum(['active', 'inactive', 'permanent']),
  message: z.string().optional(),
  code: z.string().optional(),
});
const CustomFieldWrite = z
  .object({
    id: z.string().optional(),
    key: z.string().optional(),
    field_value: z.unknown().optional(),
    value: z.unknown().optional(),
  })
  .refine((f) => f.id !== undefined || f.key !== undefined, { message: 'id should not be empty' });
const ContactFields = {
  firstName: ns,
  lastName: ns,
  name: ns,
  email: ns,
  phone: ns,
  address1: ns,
  city: ns,
  state: ns,
  website: ns,
  timezone: ns,
  postalCode: z.string().optional(),
  dnd: z.boolean().optional(),
  dndSettings: z.record(z.enum(['Call', 'Email', 'SMS', 'WhatsApp', 'GMB', 'FB']), dnd).optional(),
  inboundDndSettings: z
    .object({ all: z.object({ status: z.enum(['active', 'inactive']), message: z.string().optional() }) })
    .optional(),
  tags: z.array(z.string()).optional(),
  customFields: z.array(CustomFieldWrite).optional(),
  source: ns,
  dateOfBirth: z.unknown().optional(),
  country: z.string().optional(),
  assignedTo: ns,
};
const CreateBody = z.object({
  ...ContactFields,
  locationId: z.string().min(1),
  gender: z.string().optional(),
  companyName: ns,
});
const UpsertBody = CreateBody.extend({ createNewIfDuplicateAllowed: z.boolean().optional() });
const UpdateBody = z.object(ContactFields);
const TagsBody = z.object({ tags: z.array(z.string()) });

type Filter = { field?: string; operator?: string; value?: unknown; group?: 'AND' | 'OR'; filters?: Filter[] };
const SearchBody = z.object({
  locationId: z.string().min(1),
  pageLimit: z.number().int().min(1).max(500).optional(),
  page: z.number().int().min(1).optional(),
  searchAfter: z.array(z.union([z.string(), z.number()])).optional(),
  filters: z.array(z.any()).optional(),
  sort: z.array(z.object({ field: z.string(), direction: z.enum(['asc', 'desc']) })).optional(),
  query: z.string().max(75).optional(),
});

/** Field value for search filters; `customFields.<id>` addresses a custom field (UNCONFIRMED syntax). */
function fieldOf(c: Contact, field: string): unknown {
  if (field.startsWith('customFields.') || field.startsWith('customField.')) {
    const id = field.slice(field.indexOf('.') + 1);
    return c.customFields.find((f) => f.id === id)?.value;
  }
  const api = contactToApi(c);
  if (field === 'phone') return normPhone(c.phone);
  return api[field];
}

function matches(c: Contact, f: Filter): boolean {
  if (f.group || f.filters) {
    const subs = f.filters ?? [];
    return f.group === 'OR' ? subs.some((s) => matches(c, s)) : subs.every((s) => matches(c, s));
  }
  const v = fieldOf(c, f.field ?? '');
  const want = f.field === 'phone' && typeof f.value === 'string' ? normPhone(f.value) : f.value;
  const eq = (a: unknown, b: unknown) =>
    Array.isArray(a)
      ? Array.isArray(b)
        ? b.every((x) => a.includes(x))
        : a.includes(b)
      : typeof a === 'string' && typeof b === 'string'
        ? a.toLowerCase() === b.toLowerCase()
        : a === b;
  switch (f.operator) {
    case 'eq':
      return eq(v, want);
    case 'not_eq':
      return !eq(v, want);
    case 'contains':
      return typeof v === 'string'
        ? v.toLowerCase().includes(String(want).toLowerCase())
        : Array.isArray(v) && v.includes(want);
    case 'not_contains':
      return !(typeof v === 'string'
        ? v.toLowerCase().includes(String(want).toLowerCase())
        : Array.isArray(v) && v.includes(want));
    case 'exists':
      return v !== undefined && v !== null && v !== '';
    case 'not_exists':
      return v === undefined || v === null || v === '';
    case 'range': {
      const r = (want ?? {}) as {
        gt?: number | string;
        gte?: number | string;
        lt?: number | string;
        lte?: number | string;
      };
      const n = typeof v === 'string' && Number.isNaN(Number(v)) ? Date.parse(v) : Number(v);
      const num = (x: number | string) =>
        typeof x === 'string' && Number.isNaN(Number(x)) ? Date.parse(x) : Number(x);
      return (
        (r.gt === undefined || n > num(r.gt)) &&
        (r.gte === undefined || n >= num(r.gte)) &&
        (r.lt === undefined || n < num(r.lt)) &&
        (r.lte === undefined || n <= num(r.lte))
      );
    }
    default:
      throw unprocessable([`operator must be one of eq, not_eq, contains, not_contains, exists, not_exists, range`]);
  }
}

type Sort = { field: string; direction: 'asc' | 'desc' };
const bySorts =
  (sorts: Sort[]) =>
  (x: Contact, y: Contact): number => {
    const key = (c: Contact, f: string) =>
      f === 'dateAdded' ? c.dateAdded : f === 'dateUpdated' ? c.dateUpdated : String(fieldOf(c, f) ?? '');
    for (const s of sorts) {
      const a = key(x, s.field);
      const z2 = key(y, s.field);
      if (a < z2) return s.direction === 'asc' ? -1 : 1;
      if (a > z2) return s.direction === 'asc' ? 1 : -1;
    }
    return x.id.localeCompare(y.id);
  };

export function registerContactRoutes(app: FastifyInstance, ctx: Ctx): void {
  // location|direction → its contacts by dateAdded (ties by id), as of a version of the contacts map.
  const views = new Map<string, { map: object; version: number; rows: Contact[] }>();
  const sortedByDate = (locationId: string, direction: 'asc' | 'desc'): Contact[] => {
    const all = ctx.state.contacts;
    const k = `${locationId}|${direction}`;
    const v = views.get(k);
    if (v && v.map === all && v.version === all.version) return v.rows;
    const rows = [...all.values()]
      .filter((c) => c.locationId === locationId)
      .sort(bySorts([{ field: 'dateAdded', direction }]));
    views.set(k, { map: all, version: all.version, rows });
    return rows;
  };

  const contactFor = (auth: AuthContext, id: string): Contact => {
    const c = ctx.state.contacts.get(id);
    if (!c) throw badRequest('Contact not found');
    assertLocationAccess(ctx, auth, c.locationId);
    return c;
  };

  op(app, ctx, 'POST', '/contacts/', WR, (req, reply, auth) => {
    const b = parseBody(CreateBody, req.body);
    assertLocationAccess(ctx, auth, b.locationId);
    const c = createContact(ctx, mustLocation(ctx, b.locationId), b as ContactInput, { checkDuplicates: true });
    return reply.code(201).send({ contact: contactToApi(c) });
  });

  op(app, ctx, 'POST', '/contacts/upsert', WR, (req, _r, auth) => {
    const b = parseBody(UpsertBody, req.body);
    assertLocationAccess(ctx, auth, b.locationId);
    const { contact, isNew } = upsertContact(ctx, mustLocation(ctx, b.locationId), b as ContactInput);
    return { new: isNew, contact: contactToApi(contact), traceId: ctx.ids.uuid() };
  });

  op(app, ctx, 'POST', '/contacts/search', RD, (req, _r, auth) => {
    const b = parseBody(SearchBody, req.body);
    assertLocationAccess(ctx, auth, b.locationId);
    if (b.page !== undefined && b.searchAfter !== undefined)
      throw badRequest('page and searchAfter cannot be used together');
    const sorts = b.sort ?? [{ field: 'dateAdded', direction: 'desc' as const }];
    // The usual walk (by dateAdded alone) reads a sorted view kept until contacts are added or deleted; other sorts
    // sort on every call.
    const byDate = sorts.length === 1 && sorts[0]!.field === 'dateAdded';
    let rows = byDate
      ? sortedByDate(b.locationId, sorts[0]!.direction)
      : [...ctx.state.contacts.values()].filter((c) => c.locationId === b.locationId);
    for (const f of (b.filters ?? []) as Filter[]) rows = rows.filter((c) => matches(c, f));
    if (b.query) {
      const q = b.query.toLowerCase();
      rows = rows.filter((c) =>
        [c.firstName, c.lastName, c.name, c.email, c.phone, c.companyName].some(
          (x) => typeof x === 'string' && x.toLowerCase().includes(q),
        ),
      );
    }
    if (!byDate) rows.sort(bySorts(sorts));
    const total = rows.length;
    const limit = b.pageLimit ?? 20;
    let page: Contact[];
    if (b.searchAfter) {
      const [ts, id] = b.searchAfter;
      const i = rows.findIndex((c) => c.id === id && (ts === undefined || c.dateAdded === Number(ts)));
      page = rows.slice(i + 1, i + 1 + limit);
    } else {
      const p = b.page ?? 1;
      if (p * limit > 10_000 + limit) throw badRequest('Use searchAfter to paginate beyond 10,000 records');
      page = rows.slice((p - 1) * limit, p * limit);
    }
    return { contacts: page.map((c) => ({ ...contactToApi(c), searchAfter: [c.dateAdded, c.id] })), total };
  });

  op(app, ctx, 'GET', '/contacts/search/duplicate', RD, (req, _r, auth) => {
    const q = query(req);
    if (!q.locationId) throw unprocessable(['locationId should not be empty']);
    assertLocationAccess(ctx, auth, q.locationId);
    const loc = mustLocation(ctx, q.locationId);
    // With duplicates allowed: email first, then phone; otherwise the location's configured sequence.
    const view = loc.duplicates.allowDuplicateContact
      ? { ...loc, duplicates: { ...loc.duplicates, priority: ['email', 'phone'] as ('email' | 'phone')[] } }
      : loc;
    const dup = findDuplicate(ctx, view, q.email ? normEmail(q.email) : undefined, q.number);
    return { contact: dup ? contactToApi(dup.contact) : null, ...(dup ? { matchingField: dup.field } : {}) };
  });

  op(app, ctx, 'GET', '/contacts/', RD, (req, _r, auth) => {
    const q = query(req);
    if (!q.locationId) throw unprocessable(['locationId should not be empty']);
    assertLocationAccess(ctx, auth, q.locationId);
    let rows = [...ctx.state.contacts.values()]
      .filter((c) => c.locationId === q.locationId)
      .sort((a, b) => a.dateAdded - b.dateAdded || a.id.localeCompare(b.id));
    if (q.query) {
      const needle = q.query.toLowerCase();
      rows = rows.filter((c) => JSON.stringify(contactToApi(c)).toLowerCase().includes(needle));
    }
    const total = rows.length;
    if (q.startAfterId) {
      const i = rows.findIndex((c) => c.id === q.startAfterId);
      rows = rows.slice(i + 1);
    } else if (q.startAfter) rows = rows.filter((c) => c.dateAdded > Number(q.startAfter));
    const limit = Math.min(Math.max(Number(q.limit ?? 20) || 20, 1), 100);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      contacts: page.map(contactToApi),
      count: total,
      meta: {
        total,
        currentPage: null,
        nextPage: rows.length > limit ? 2 : null,
        prevPage: null,
        startAfter: last?.dateAdded ?? null,
        startAfterId: last?.id ?? null,
        nextPageUrl: null,
      },
    };
  });

  op(app, ctx, 'GET', '/contacts/:contactId', RD, (req, _r, auth) => ({
    contact: contactToApi(contactFor(auth, params(req).contactId ?? '')),
  }));

  op(app, ctx, 'PUT', '/contacts/:contactId', WR, (req, _r, auth) => {
    const b = parseBody(UpdateBody, req.body);
    const c = contactFor(auth, params(req).contactId ?? '');
    return { succeded: true, contact: contactToApi(updateContact(ctx, c, b as ContactInput)) };
  });

  op(app, ctx, 'DELETE', '/contacts/:contactId', WR, (req, _r, auth) => {
    deleteContact(ctx, contactFor(auth, params(req).contactId ?? ''));
    return { succeded: true };
  });

  op(app, ctx, 'POST', '/contacts/:contactId/tags', WR, (req, reply, auth) => {
    const b = parseBody(TagsBody, req.body);
    const c = contactFor(auth, params(req).contactId ?? '');
    return reply.code(201).send({ tags: changeTags(ctx, c, b.tags, []) });
  });

  op(app, ctx, 'DELETE', '/contacts/:contactId/tags', WR, (req, _r, auth) => {
    const b = parseBody(TagsBody, req.body);
    const c = contactFor(auth, params(req).contactId ?? '');
    return { tags: changeTags(ctx, c, [], b.tags) };
  });
}
