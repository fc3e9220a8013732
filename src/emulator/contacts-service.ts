import type { Ctx } from './context.js';
import { badRequest } from './errors.js';
import { emitLocationEvent } from './events.js';
import type { Contact, ContactCustomFieldValue, Location } from './state.js';

export interface ContactInput {
  firstName?: string | null;
  lastName?: string | null;
  name?: string | null;
  email?: string | null;
  phone?: string | null;
  gender?: string;
  address1?: string | null;
  city?: string | null;
  state?: string | null;
  postalCode?: string;
  website?: string | null;
  timezone?: string | null;
  dnd?: boolean;
  dndSettings?: Record<string, unknown>;
  inboundDndSettings?: Record<string, unknown>;
  tags?: string[];
  customFields?: { id?: string; key?: string; field_value?: unknown; value?: unknown }[];
  source?: string | null;
  dateOfBirth?: unknown;
  country?: string;
  companyName?: string | null;
  assignedTo?: string | null;
}

export const normPhone = (p: string | null | undefined) => (p ? p.replace(/[^\d+]/g, '') : '');
export const normEmail = (e: string | null | undefined) => (e ? e.trim().toLowerCase() : '');

function resolveCustomFields(
  ctx: Ctx,
  locationId: string,
  input: ContactInput['customFields'],
  current: ContactCustomFieldValue[],
) {
  if (!input) return current;
  const out = current.map((c) => ({ ...c }));
  for (const f of input) {
    let id = f.id;
    if (!id && f.key) {
      const key = f.key.startsWith('contact.') ? f.key : `contact.${f.key}`;
      id = [...ctx.state.customFields.values()].find((c) => c.locationId === locationId && c.fieldKey === key)?.id;
    }
    const def = id ? ctx.state.customFields.get(id) : undefined;
    if (!id || !def || def.locationId !== locationId) throw badRequest(`Custom field ${f.id ?? f.key ?? ''} not found`);
    // GHL writes `field_value`; `value` accepted too (unconfirmed, docs/ghl-behaviour.md#custom-field-values).
    const value = f.field_value !== undefined ? f.field_value : f.value;
    const i = out.findIndex((c) => c.id === id);
    if (value === null || value === '') {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = { id, value };
    else out.push({ id, value });
  }
  return out;
}

function applyFields(ctx: Ctx, c: Contact, input: ContactInput): void {
  const keys = [
    'firstName',
    'lastName',
    'name',
    'email',
    'phone',
    'gender',
    'address1',
    'city',
    'state',
    'postalCode',
    'website',
    'timezone',
    'dnd',
    'dndSettings',
    'inboundDndSettings',
    'source',
    'country',
    'companyName',
    'assignedTo',
  ] as const;
  const target = c as unknown as Record<string, unknown>;
  for (const k of keys) if (input[k] !== undefined) target[k] = input[k];
  if (input.dateOfBirth !== undefined) c.dateOfBirth = input.dateOfBirth === null ? null : String(input.dateOfBirth);
  if (input.tags !== undefined) c.tags = [...new Set(input.tags)];
  c.customFields = resolveCustomFields(ctx, c.locationId, input.customFields, c.customFields);
  if (input.name && input.firstName === undefined && input.lastName === undefined) {
    const [first, ...rest] = input.name.trim().split(/\s+/);
    c.firstName = first ?? null;
    c.lastName = rest.length ? rest.join(' ') : (c.lastName ?? null);
  }
}

export function fullName(c: Contact): string {
  return [c.firstName, c.lastName].filter(Boolean).join(' ') || c.name || '';
}

/** Contact as the REST API returns it (GetContectByIdSchema / CreateContactSchema). */
export function contactToApi(c: Contact): Record<string, unknown> {
  const name = fullName(c);
  const o: Record<string, unknown> = {
    id: c.id,
    locationId: c.locationId,
    dateAdded: new Date(c.dateAdded).toISOString(),
    dateUpdated: new Date(c.dateUpdated).toISOString(),
    deleted: false,
    tags: c.tags,
    type: c.type,
    customFields: c.customFields.map((f) => ({ id: f.id, value: f.value })),
    dnd: c.dnd,
    ...(name ? { name, fullNameLowerCase: name.toLowerCase() } : {}),
  };
  const put = (k: string, v: unknown) => {
    if (v !== undefined && v !== null) o[k] = v;
  };
  put('firstName', c.firstName);
  put('firstNameLowerCase', c.firstName?.toLowerCase());
  put('lastName', c.lastName);
  put('lastNameLowerCase', c.lastName?.toLowerCase());
  put('email', c.email);
  put('emailLowerCase', c.email?.toLowerCase());
  put('phone', c.phone);
  put('address1', c.address1);
  put('city', c.city);
  put('state', c.state);
  put('country', c.country);
  put('postalCode', c.postalCode);
  put('website', c.website);
  put('timezone', c.timezone);
  put('source', c.source);
  put('companyName', c.companyName);
  put('dateOfBirth', c.dateOfBirth);
  put('assignedTo', c.assignedTo);
  put('dndSettings', c.dndSettings);
  return o;
}

/** Webhook body for Contact* events (flat; see webhook-events/ContactCreate.md). */
function contactEvent(type: string, c: Contact): Record<string, unknown> & { type: string } {
  const api = contactToApi(c);
  delete api.firstNameLowerCase;
  delete api.lastNameLowerCase;
  delete api.fullNameLowerCase;
  delete api.emailLowerCase;
  delete api.deleted;
  delete api.dateUpdated;
  delete api.type;
  return { type, ...api, attachments: [] };
}

/**
 * Existing contact matching email/phone, in the location's configured priority order (docs/ghl-behaviour.md#contact-upsert): if one contact
 * matches the email and another the phone, the first field in the sequence wins.
 */
export function findDuplicate(
  ctx: Ctx,
  loc: Location,
  email?: string | null,
  phone?: string | null,
): { contact: Contact; field: 'email' | 'phone' } | undefined {
  const e = normEmail(email);
  const p = normPhone(phone);
  for (const field of loc.duplicates.priority) {
    for (const c of ctx.state.contacts.values()) {
      if (c.locationId !== loc.id) continue;
      if (field === 'email' && e && normEmail(c.email) === e) return { contact: c, field };
      if (field === 'phone' && p && normPhone(c.phone) === p) return { contact: c, field };
    }
  }
  return undefined;
}

export function createContact(
  ctx: Ctx,
  loc: Location,
  input: ContactInput,
  opts: { checkDuplicates: boolean },
): Contact {
  if (opts.checkDuplicates && !loc.duplicates.allowDuplicateContact) {
    const dup = findDuplicate(ctx, loc, input.email, input.phone);
    if (dup)
      throw badRequest('This location does not allow duplicated contacts.', {
        meta: { contactName: fullName(dup.contact), matchingField: dup.field, contactId: dup.contact.id },
      });
  }
  const now = ctx.clock.now();
  const c: Contact = {
    id: ctx.ids.id(),
    locationId: loc.id,
    dnd: false,
    tags: [],
    customFields: [],
    type: 'lead',
    dateAdded: now,
    dateUpdated: now,
  };
  applyFields(ctx, c, input);
  ctx.state.contacts.set(c.id, c);
  emitLocationEvent(ctx, loc.id, contactEvent('ContactCreate', c));
  return c;
}

export function updateContact(ctx: Ctx, c: Contact, input: ContactInput): Contact {
  const tagsBefore = c.tags.join('\u0000');
  const dndBefore = JSON.stringify([c.dnd, c.dndSettings]);
  applyFields(ctx, c, input);
  c.dateUpdated = ctx.clock.now();
  emitLocationEvent(ctx, c.locationId, contactEvent('ContactUpdate', c));
  if (tagsBefore !== c.tags.join('\u0000')) emitLocationEvent(ctx, c.locationId, contactEvent('ContactTagUpdate', c));
  if (dndBefore !== JSON.stringify([c.dnd, c.dndSettings]))
    emitLocationEvent(ctx, c.locationId, contactEvent('ContactDndUpdate', c));
  return c;
}

export function deleteContact(ctx: Ctx, c: Contact): void {
  ctx.state.contacts.delete(c.id);
  emitLocationEvent(ctx, c.locationId, contactEvent('ContactDelete', c));
}

export function changeTags(ctx: Ctx, c: Contact, add: string[], remove: string[]): string[] {
  const before = c.tags.join('\u0000');
  c.tags = [...new Set([...c.tags.filter((t) => !remove.includes(t)), ...add])];
  if (before !== c.tags.join('\u0000')) {
    c.dateUpdated = ctx.clock.now();
    emitLocationEvent(ctx, c.locationId, contactEvent('ContactTagUpdate', c));
  }
  return c.tags;
}

/** Upsert per the location's duplicate settings (docs/ghl-behaviour.md#contact-upsert). */
export function upsertContact(
  ctx: Ctx,
  loc: Location,
  input: ContactInput & { createNewIfDuplicateAllowed?: boolean },
): { contact: Contact; isNew: boolean } {
  if (!(input.createNewIfDuplicateAllowed && loc.duplicates.allowDuplicateContact)) {
    const dup = findDuplicate(ctx, loc, input.email, input.phone);
    if (dup) {
      // The other field, if it identifies a different contact, is ignored to prevent duplication.
      const other = dup.field === 'email' ? 'phone' : 'email';
      const clash = findDuplicate(
        ctx,
        { ...loc, duplicates: { ...loc.duplicates, priority: [other] } },
        input.email,
        input.phone,
      );
      const clashes = clash !== undefined && clash.contact.id !== dup.contact.id;
      if (clashes && ctx.opts.upsertClash === 'reject')
        throw badRequest(`The ${other} belongs to another contact; this location does not allow duplicated contacts.`, {
          meta: { contactName: fullName(clash.contact), matchingField: other, contactId: clash.contact.id },
        });
      const patch = clashes ? { ...input, [other]: undefined } : input;
      return { contact: updateContact(ctx, dup.contact, patch), isNew: false };
    }
  }
  return { contact: createContact(ctx, loc, input, { checkDuplicates: false }), isNew: true };
}
