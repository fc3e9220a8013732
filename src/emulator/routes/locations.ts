import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { assertLocationAccess } from '../auth.js';
import type { Ctx } from '../context.js';
import { badRequest } from '../errors.js';
import type { CustomField } from '../state.js';
import { parseBody } from '../validate.js';
import { mustLocation, op, params, query } from './util.js';

const V = '2021-07-28';
const DATA_TYPES = [
  'TEXT',
  'LARGE_TEXT',
  'NUMERICAL',
  'PHONE',
  'MONETORY',
  'CHECKBOX',
  'SINGLE_OPTIONS',
  'MULTIPLE_OPTIONS',
  'DATE',
  'TEXTBOX_LIST',
  'FILE_UPLOAD',
  'RADIO',
  'EMAIL',
];

const CreateBody = z.object({
  name: z.string().min(1),
  dataType: z
    .string()
    .refine((d) => DATA_TYPES.includes(d), { message: `dataType must be one of ${DATA_TYPES.join(', ')}` }),
  placeholder: z.string().optional(),
  position: z.number().optional(),
  model: z.enum(['contact', 'opportunity']).optional(),
  options: z.array(z.string()).optional(),
  textBoxListOptions: z.array(z.unknown()).optional(),
  acceptedFormat: z.array(z.string()).optional(),
  isMultipleFile: z.boolean().optional(),
  maxNumberOfFiles: z.number().optional(),
});
const UpdateBody = z.object({
  name: z.string().min(1).optional(),
  placeholder: z.string().optional(),
  position: z.number().optional(),
  options: z.array(z.string()).optional(),
});

/** `contact.` + snake_case(name), suffixed on collision (generation rule unconfirmed, docs/ghl-behaviour.md#custom-field-values). */
function fieldKey(ctx: Ctx, locationId: string, model: string, name: string): string {
  const base = `${model}.${
    name
      .trim()
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_|_$/g, '') || 'field'
  }`;
  const taken = new Set(
    [...ctx.state.customFields.values()].filter((f) => f.locationId === locationId).map((f) => f.fieldKey),
  );
  let key = base;
  for (let i = 1; taken.has(key); i++) key = `${base}_${i}`;
  return key;
}

export const customFieldToApi = (f: CustomField) => ({
  id: f.id,
  name: f.name,
  fieldKey: f.fieldKey,
  placeholder: f.placeholder,
  dataType: f.dataType,
  position: f.position,
  picklistOptions: f.picklistOptions,
  picklistImageOptions: [],
  isAllowedCustomOption: false,
  isMultiFileAllowed: false,
  maxFileLimit: 0,
  locationId: f.locationId,
  model: f.model,
  dateAdded: new Date(f.dateAdded).toISOString(),
});

export function registerLocationRoutes(app: FastifyInstance, ctx: Ctx): void {
  op(
    app,
    ctx,
    'GET',
    '/locations/:locationId',
    { version: V, scopes: ['locations.readonly'], access: 'any' },
    (req, _r, auth) => {
      const loc = mustLocation(ctx, params(req).locationId ?? '');
      assertLocationAccess(ctx, auth, loc.id);
      return {
        location: {
          id: loc.id,
          companyId: loc.companyId,
          name: loc.name,
          address: loc.address,
          timezone: loc.timezone,
          ...(loc.phone ? { phone: loc.phone } : {}),
          ...(loc.email ? { email: loc.email } : {}),
          ...(loc.country ? { country: loc.country } : {}),
          settings: { allowDuplicateContact: loc.duplicates.allowDuplicateContact },
        },
      };
    },
  );

  const field = (locationId: string, id: string): CustomField => {
    const f = ctx.state.customFields.get(id);
    if (!f || f.locationId !== locationId) throw badRequest('Custom field not found');
    return f;
  };

  op(
    app,
    ctx,
    'GET',
    '/locations/:locationId/customFields',
    { version: V, scopes: ['locations/customFields.readonly'], access: 'location' },
    (req, _r, auth) => {
      const locationId = params(req).locationId ?? '';
      assertLocationAccess(ctx, auth, locationId);
      const model = query(req).model ?? 'all';
      const rows = [...ctx.state.customFields.values()]
        .filter((f) => f.locationId === locationId && (model === 'all' || f.model === model))
        .sort((a, b) => a.position - b.position || a.dateAdded - b.dateAdded);
      return { customFields: rows.map(customFieldToApi) };
    },
  );

  op(
    app,
    ctx,
    'POST',
    '/locations/:locationId/customFields',
    { version: V, scopes: ['locations/customFields.write'], access: 'location' },
    (req, reply, auth) => {
      const locationId = params(req).locationId ?? '';
      assertLocationAccess(ctx, auth, locationId);
      const b = parseBody(CreateBody, req.body);
      const model = b.model ?? 'contact';
      const f: CustomField = {
        id: ctx.ids.id(),
        locationId,
        name: b.name,
        fieldKey: fieldKey(ctx, locationId, model, b.name),
        placeholder: b.placeholder ?? '',
        dataType: b.dataType,
        position: b.position ?? 0,
        picklistOptions: b.options ?? [],
        model,
        dateAdded: ctx.clock.now(),
      };
      ctx.state.customFields.set(f.id, f);
      return reply.code(201).send({ customField: customFieldToApi(f) });
    },
  );

  op(
    app,
    ctx,
    'GET',
    '/locations/:locationId/customFields/:id',
    { version: V, scopes: [], access: 'location' },
    (req, _r, auth) => {
      const p = params(req);
      assertLocationAccess(ctx, auth, p.locationId ?? '');
      return { customField: customFieldToApi(field(p.locationId ?? '', p.id ?? '')) };
    },
  );

  op(
    app,
    ctx,
    'PUT',
    '/locations/:locationId/customFields/:id',
    { version: V, scopes: [], access: 'location' },
    (req, _r, auth) => {
      const p = params(req);
      assertLocationAccess(ctx, auth, p.locationId ?? '');
      const f = field(p.locationId ?? '', p.id ?? '');
      const b = parseBody(UpdateBody, req.body);
      if (b.name !== undefined) f.name = b.name;
      if (b.placeholder !== undefined) f.placeholder = b.placeholder;
      if (b.position !== undefined) f.position = b.position;
      if (b.options !== undefined) f.picklistOptions = b.options;
      return { customField: customFieldToApi(f) };
    },
  );

  op(
    app,
    ctx,
    'DELETE',
    '/locations/:locationId/customFields/:id',
    { version: V, scopes: [], access: 'location' },
    (req, _r, auth) => {
      const p = params(req);
      assertLocationAccess(ctx, auth, p.locationId ?? '');
      const f = field(p.locationId ?? '', p.id ?? '');
      ctx.state.customFields.delete(f.id);
      for (const c of ctx.state.contacts.values()) c.customFields = c.customFields.filter((v) => v.id !== f.id);
      return { succeded: true };
    },
  );
}
