import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshJob } from '../../src/capabilities/contacts/index.js';
import { startContacts, type ContactsWorld } from './harness.js';

let cw: ContactsWorld;
let L0: string;
let L1: string;
const emu = () => cw.w.emu.control;
const contactsOf = (loc: string) => emu().listContacts({ locationId: loc });
const byEmail = (loc: string, email: string) => contactsOf(loc).find((c) => c.email === email);
const fieldsOf = (loc: string) => emu().listCustomFields({ locationId: loc });
const mapping = async (loc: string) =>
  (await (await cw.api(`/v1/locations/${loc}/contacts/mapping`)).json()) as {
    region: string;
    fields: Array<{ logical: string; ghl: { id: string; dataType: string | null } | null }>;
  };
const declare = (loc: string, logical: string, body: Record<string, unknown>) =>
  cw.api(`/v1/locations/${loc}/contacts/mapping/${logical}`, { method: 'PUT', body });
const refresh = (loc: string, create?: boolean) =>
  cw.api(`/v1/locations/${loc}/contacts/mapping/refresh`, { method: 'POST', body: create ? { create } : {} });

beforeAll(async () => {
  cw = await startContacts({ locations: 2 });
  [L0, L1] = cw.w.locationIds as [string, string];
  emu().updateLocation(L1, { country: 'PH' });
  // GHL fields made by a user: one matched by name, one by key (its name differs from the logical name).
  emu().createCustomField({ locationId: L0, name: 'Job Title', dataType: 'TEXT' });
  emu().createCustomField({
    locationId: L0,
    name: 'LinkedIn profile',
    dataType: 'TEXT',
    fieldKey: 'contact.linkedin_url',
  });
  emu().createCustomField({
    locationId: L0,
    name: 'Cadence Stage',
    dataType: 'SINGLE_OPTIONS',
    options: ['new', 'contacted', 'won'],
  });
  for (const [l, t, extra] of [
    ['job_title', 'TEXT', {}],
    ['linkedin_url', 'TEXT', {}],
    ['cadence_stage', 'SINGLE_OPTIONS', {}],
    ['dial_attempts', 'NUMERICAL', {}],
  ] as const)
    expect((await declare(L0, l, { dataType: t, ...extra })).status).toBe(200);
  expect((await declare(L1, 'job_title', { dataType: 'TEXT' })).status).toBe(200);
}, 60_000);
afterAll(async () => cw?.close());

describe('field mapping', () => {
  it('discovers fields by key then name, leaves missing ones unmapped, creates them with their declared type when asked', async () => {
    const r = await refresh(L0);
    expect(r.status).toBe(200);
    let m = await mapping(L0);
    const ids = Object.fromEntries(m.fields.map((f) => [f.logical, f.ghl?.id ?? null]));
    const ghl = fieldsOf(L0);
    expect(ids.job_title).toBe(ghl.find((f) => f.name === 'Job Title')!.id);
    expect(ids.linkedin_url).toBe(ghl.find((f) => f.fieldKey === 'contact.linkedin_url')!.id);
    expect(ids.cadence_stage).toBe(ghl.find((f) => f.name === 'Cadence Stage')!.id);
    expect(ids.dial_attempts).toBeNull();
    expect(fieldsOf(L0)).toHaveLength(3);

    expect((await refresh(L0, true)).status).toBe(200);
    m = await mapping(L0);
    const dial = m.fields.find((f) => f.logical === 'dial_attempts')!;
    const created = fieldsOf(L0).find((f) => f.id === dial.ghl?.id);
    expect(created?.dataType).toBe('NUMERICAL');
    expect(created?.name).toBe('Dial Attempts');
    expect(fieldsOf(L0)).toHaveLength(4);
    // A second refresh finds the created field: nothing is created twice.
    expect((await refresh(L0, true)).status).toBe(200);
    expect(fieldsOf(L0)).toHaveLength(4);
  });

  it('runs a queued refresh (the CLI’s) in the bridge', async () => {
    expect((await declare(L1, 'segment', { dataType: 'TEXT' })).status).toBe(200);
    const f = emu().createCustomField({ locationId: L1, name: 'Segment', dataType: 'TEXT' });
    await refreshJob.enqueue(cw.b.ctx.db, { locationId: L1 });
    cw.b.ctx.queue.notify();
    const deadline = Date.now() + 10_000;
    while ((await mapping(L1)).fields.find((x) => x.logical === 'segment')?.ghl?.id !== f.id) {
      if (Date.now() > deadline) throw new Error('queued refresh did not map the field');
      await new Promise((r) => setTimeout(r, 25));
    }
    await cw.api(`/v1/locations/${L1}/contacts/mapping/segment`, { method: 'DELETE' });
  });

  it('refuses wrong-typed values and options that do not exist before any GHL call, naming the field; the rest goes on', async () => {
    await refresh(L0, true);
    const mark = cw.mark();
    const res = await cw.api(`/v1/locations/${L0}/contacts/batches`, {
      method: 'POST',
      body: {
        records: [
          { externalId: 't-1', email: 't1@example.com', customFields: { dial_attempts: 'lots' } },
          { externalId: 't-2', email: 't2@example.com', customFields: { cadence_stage: 'bogus' } },
          { externalId: 't-3', email: 't3@example.com', customFields: { favourite_colour: 'blue' } },
          { externalId: 't-4', email: 't4@example.com', customFields: { dial_attempts: '3', cadence_stage: 'new' } },
        ],
      },
    });
    expect(res.status).toBe(202);
    const a = (await res.json()) as { batchId: string; failed: number; queued: number; errors: string[] };
    expect(a.failed).toBe(3);
    expect(a.queued).toBe(1);
    expect(a.errors[0]).toMatch(
      /^records\[0\]\.customFields\.dial_attempts: expected a number for NUMERICAL field "Dial Attempts", got "lots"/,
    );
    expect(a.errors[1]).toMatch(
      /^records\[1\]\.customFields\.cadence_stage: expected one of "new", "contacted", "won"/,
    );
    expect(a.errors[2]).toMatch(/^records\[2\]\.customFields\.favourite_colour: unknown logical field/);
    const b = await cw.waitBatch(L0, a.batchId);
    expect(b.records.map((r) => r.outcome)).toEqual(['failed', 'failed', 'failed', 'created']);
    expect(b.status).toBe('partial');
    // Only the valid record reached GHL.
    const upserts = cw.ghlCalls(mark).filter((c) => c.path === '/contacts/upsert');
    expect(upserts).toHaveLength(1);
    const c = byEmail(L0, 't4@example.com')!;
    const dial = (await mapping(L0)).fields.find((f) => f.logical === 'dial_attempts')!.ghl!.id;
    expect(c.customFields.find((f) => f.id === dial)?.value).toBe(3);
    expect(byEmail(L0, 't1@example.com')).toBeUndefined();
  });
});

describe('push', () => {
  it('creates, then re-push unchanged costs 0 GHL calls, then updates by id and applies tags as a diff', async () => {
    await refresh(L0, true);
    const recs = [1, 2, 3].map((i) => ({
      externalId: `crm-${i}`,
      firstName: `First${i}`,
      lastName: 'Tester',
      email: `Person${i}@Example.com`,
      phone: `(415) 555-01${10 + i}`,
      companyName: 'Acme',
      source: 'portal',
      tags: ['lead', `t${i}`],
      customFields: { job_title: `Engineer ${i}`, dial_attempts: i },
    }));
    const b1 = await cw.push(L0, recs);
    expect(b1.records.map((r) => r.outcome)).toEqual(['created', 'created', 'created']);
    expect(b1.status).toBe('success');
    const c1 = byEmail(L0, 'person1@example.com')!;
    expect(c1.phone).toBe('+14155550111');
    expect(c1.companyName).toBe('Acme');
    expect(c1.tags.sort()).toEqual(['lead', 't1']);
    expect(b1.records[0]!.contactId).toBe(c1.id);
    const map = await (await cw.api(`/v1/locations/${L0}/contacts/map/crm-1`)).json();
    expect(map).toMatchObject({ contactId: c1.id, externalId: 'crm-1' });

    const mark = cw.mark();
    const b2 = await cw.push(L0, recs);
    expect(b2.records.map((r) => [r.outcome, r.contactId])).toEqual(b1.records.map((r) => ['unchanged', r.contactId]));
    expect(cw.ghlCalls(mark)).toEqual([]);

    const changed = [
      { ...recs[0]!, customFields: { job_title: 'CTO', dial_attempts: 1 }, tags: ['lead', 'vip'] },
      { ...recs[1]!, tags: ['t2'] },
      recs[2]!,
    ];
    const m2 = cw.mark();
    const b3 = await cw.push(L0, changed);
    expect(b3.records.map((r) => r.outcome)).toEqual(['updated', 'updated', 'unchanged']);
    const calls = cw.ghlCalls(m2).map((c) => `${c.method} ${c.path.replace(/[A-Za-z0-9]{20,}/g, ':id')}`);
    // Record 1: fields changed (PUT) + one tag added, one removed; record 2: only a tag removed (no PUT).
    expect(calls.sort()).toEqual(
      ['PUT /contacts/:id', 'POST /contacts/:id/tags', 'DELETE /contacts/:id/tags', 'DELETE /contacts/:id/tags'].sort(),
    );
    expect(calls.filter((c) => c.includes('upsert'))).toEqual([]);
    const after = byEmail(L0, 'person1@example.com')!;
    expect(after.id).toBe(c1.id);
    expect(after.tags.sort()).toEqual(['lead', 'vip']);
    const jt = (await mapping(L0)).fields.find((f) => f.logical === 'job_title')!.ghl!.id;
    expect(after.customFields.find((f) => f.id === jt)?.value).toBe('CTO');
    expect(byEmail(L0, 'person2@example.com')!.tags).toEqual(['t2']);
  });

  it('upsert updates a GHL contact the bridge did not know (matched by email), leaving tags it did not push', async () => {
    const existing = emu().createContact({
      locationId: L0,
      email: 'known@example.com',
      firstName: 'Old',
      tags: ['theirs'],
    });
    const b = await cw.push(L0, [
      { externalId: 'crm-known', email: 'known@example.com', firstName: 'New', tags: ['ours'] },
    ]);
    expect(b.records[0]).toMatchObject({ outcome: 'updated', contactId: existing.id });
    const c = emu()
      .listContacts({ locationId: L0 })
      .find((x) => x.id === existing.id)!;
    expect(c.firstName).toBe('New');
    expect(c.tags.sort()).toEqual(['ours', 'theirs']);
    // A later push that drops its tag removes only that tag.
    await cw.push(L0, [{ externalId: 'crm-known', email: 'known@example.com', firstName: 'New', tags: [] }]);
    expect(
      emu()
        .listContacts({ locationId: L0 })
        .find((x) => x.id === existing.id)!.tags,
    ).toEqual(['theirs']);
  });

  it('reports a conflict when GHL would match a contact mapped to another external id, and never overwrites it', async () => {
    const a = await cw.push(L0, [{ externalId: 'owner-a', email: 'shared@example.com', firstName: 'Alice' }]);
    expect(a.records[0]!.outcome).toBe('created');
    const mark = cw.mark();
    const b = await cw.push(L0, [{ externalId: 'intruder-b', email: 'shared@example.com', firstName: 'Bob' }]);
    expect(b.records[0]!.outcome).toBe('conflict');
    expect(b.records[0]!.contactId).toBe(a.records[0]!.contactId);
    expect(b.records[0]!.reason).toMatch(/mapped to external id owner-a; not overwritten/);
    expect(b.status).toBe('failed');
    expect(byEmail(L0, 'shared@example.com')!.firstName).toBe('Alice');
    expect(cw.ghlCalls(mark)).toEqual([]);
    expect((await cw.api(`/v1/locations/${L0}/contacts/map/intruder-b`)).status).toBe(404);
  });

  it('reports a conflict when GHL drops the phone on upsert (email matched one contact, phone another)', async () => {
    const byPhone = emu().createContact({ locationId: L0, phone: '+14155550199', firstName: 'PhoneOnly' });
    const byMail = emu().createContact({ locationId: L0, email: 'mailonly@example.com', firstName: 'MailOnly' });
    const b = await cw.push(L0, [
      { externalId: 'both-1', email: 'mailonly@example.com', phone: '+1 415 555 0199', firstName: 'Both' },
    ]);
    expect(b.records[0]!.outcome).toBe('conflict');
    expect(b.records[0]!.contactId).toBe(byMail.id);
    expect(b.records[0]!.reason).toMatch(/^phone: GHL did not store \+14155550199 on contact/);
    const ghl = emu().listContacts({ locationId: L0 });
    expect(ghl.find((c) => c.id === byMail.id)!.phone ?? null).toBeNull();
    expect(ghl.find((c) => c.id === byPhone.id)!.firstName).toBe('PhoneOnly');
    // Not marked as pushed: the next push asks GHL who holds the phone first, and reports the conflict again
    // instead of writing the number onto a second contact.
    const mark = cw.mark();
    const again = await cw.push(L0, [
      { externalId: 'both-1', email: 'mailonly@example.com', phone: '+1 415 555 0199', firstName: 'Both' },
    ]);
    expect(again.records[0]!.outcome).toBe('conflict');
    expect(again.records[0]!.reason).toBe(
      `phone: +14155550199 belongs to another GHL contact (${byPhone.id}) under the location's duplicate rules; contact ${byMail.id} not updated`,
    );
    expect(cw.ghlCalls(mark).map((c) => `${c.method} ${c.path}`)).toEqual(['GET /contacts/search/duplicate']);
    expect(
      emu()
        .listContacts({ locationId: L0 })
        .find((c) => c.id === byMail.id)!.phone ?? null,
    ).toBeNull();
  });

  it('normalises national phone numbers with the location’s region (its GHL country)', async () => {
    await refresh(L1);
    expect((await mapping(L1)).region).toBe('PH');
    const b = await cw.push(L1, [{ externalId: 'ph-1', phone: '0917 123 4567', firstName: 'Juan' }]);
    expect(b.records[0]!.outcome).toBe('created');
    expect(contactsOf(L1).find((c) => c.id === b.records[0]!.contactId)!.phone).toBe('+639171234567');
  });

  it('refreshes the mapping when GHL rejects a field id it no longer has, and writes to the new field', async () => {
    const b0 = await cw.push(L1, [
      { externalId: 'ph-2', email: 'ph2@example.com', customFields: { job_title: 'Rep' } },
    ]);
    // L1 has no Job Title field: the push refreshed the mapping, found none and failed the record, naming the field.
    expect(b0.records[0]!.outcome).toBe('failed');
    expect(b0.records[0]!.reason).toMatch(/^customFields\.job_title: no custom field of this location matches/);
    expect((await mapping(L1)).fields.find((f) => f.logical === 'job_title')!.ghl).toBeNull();
    const f1 = emu().createCustomField({ locationId: L1, name: 'Job Title', dataType: 'TEXT' });
    const b1 = await cw.push(L1, [
      { externalId: 'ph-2', email: 'ph2@example.com', customFields: { job_title: 'Rep' } },
    ]);
    expect(b1.records[0]!.outcome).toBe('created');
    expect((await mapping(L1)).fields.find((f) => f.logical === 'job_title')!.ghl!.id).toBe(f1.id);
    // A user deletes the field and makes it again: the cached id is now unknown to GHL.
    emu().deleteCustomField(f1.id);
    const f2 = emu().createCustomField({ locationId: L1, name: 'Job Title', dataType: 'TEXT' });
    const mark = cw.mark();
    const b2 = await cw.push(L1, [
      { externalId: 'ph-2', email: 'ph2@example.com', customFields: { job_title: 'Manager' } },
    ]);
    expect(b2.records[0]!.outcome).toBe('updated');
    const calls = cw.ghlCalls(mark).map((c) => `${c.method} ${c.path.replace(/[A-Za-z0-9]{20,}/g, ':id')} ${c.status}`);
    expect(calls).toEqual([
      'PUT /contacts/:id 400',
      'GET /locations/:id 200',
      'GET /locations/:id/customFields 200',
      'PUT /contacts/:id 200',
    ]);
    expect((await mapping(L1)).fields.find((f) => f.logical === 'job_title')!.ghl!.id).toBe(f2.id);
    const c = contactsOf(L1).find((x) => x.id === b2.records[0]!.contactId)!;
    expect(c.customFields).toEqual([{ id: f2.id, value: 'Manager' }]);
  });

  it('refreshes the mapping at most once per batch for fields GHL does not have, failing those records by name', async () => {
    expect((await declare(L1, 'territory', { dataType: 'TEXT' })).status).toBe(200);
    const mark = cw.mark();
    const b = await cw.push(
      L1,
      [1, 2, 3, 4, 5].map((i) => ({
        externalId: `terr-${i}`,
        email: `terr${i}@example.com`,
        customFields: { territory: 'N' },
      })),
    );
    expect(b.records.map((r) => r.outcome)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed']);
    expect(b.records[0]!.reason).toMatch(
      /^customFields\.territory: no custom field of this location matches \(key contact\.territory or name "Territory"\)/,
    );
    expect(cw.ghlCalls(mark).map((c) => `${c.method} ${c.path.replace(/[A-Za-z0-9]{20,}/g, ':id')}`)).toEqual([
      'GET /locations/:id',
      'GET /locations/:id/customFields',
    ]);
    await cw.api(`/v1/locations/${L1}/contacts/mapping/territory`, { method: 'DELETE' });
  });

  it('forgets the mapping when GHL sends ContactDelete; the next push creates the contact again', async () => {
    const b = await cw.push(L0, [{ externalId: 'del-1', email: 'del1@example.com' }]);
    const id = b.records[0]!.contactId!;
    expect(emu().deleteContact(id)).toBe(true);
    const deadline = Date.now() + 10_000;
    while ((await cw.api(`/v1/locations/${L0}/contacts/map/del-1`)).status !== 404) {
      if (Date.now() > deadline) throw new Error('mapping not removed after ContactDelete');
      await new Promise((r) => setTimeout(r, 25));
    }
    const again = await cw.push(L0, [{ externalId: 'del-1', email: 'del1@example.com' }]);
    expect(again.records[0]!.outcome).toBe('created');
    expect(again.records[0]!.contactId).not.toBe(id);
  });
});

describe('transient GHL errors', () => {
  it('retries 500 answers: the record ends created, with one contact in GHL', async () => {
    emu().injectFault({ pathPattern: '/contacts/upsert', method: 'POST', times: 2, kind: '500' });
    emu().injectFault({ pathPattern: '/contacts/*/tags', method: 'POST', times: 1, kind: '500' });
    const b = await cw.push(L0, [{ externalId: 'flaky-1', email: 'flaky1@example.com', tags: ['x'] }]);
    expect(b.records[0]!.outcome).toBe('created');
    expect(contactsOf(L0).filter((c) => c.email === 'flaky1@example.com')).toHaveLength(1);
    expect(byEmail(L0, 'flaky1@example.com')!.tags).toEqual(['x']);
  });
});

describe('duplicate setting', () => {
  it('creates a new contact for an unknown external id when the location allows duplicates (createNewIfDuplicateAllowed)', async () => {
    const existing = emu().createContact({ locationId: L1, email: 'twin@example.com', firstName: 'Existing' });
    emu().updateLocation(L1, { allowDuplicateContact: true });
    try {
      await refresh(L1);
      const b = await cw.push(L1, [{ externalId: 'twin-2', email: 'twin@example.com', firstName: 'Second' }]);
      expect(b.records[0]!.outcome).toBe('created');
      expect(b.records[0]!.contactId).not.toBe(existing.id);
      expect(contactsOf(L1).find((c) => c.id === existing.id)!.firstName).toBe('Existing');
    } finally {
      emu().updateLocation(L1, { allowDuplicateContact: false });
      await refresh(L1);
    }
  });

  it('updates the matching contact when the location does not allow duplicates', async () => {
    const existing = emu().createContact({ locationId: L1, email: 'single@example.com', firstName: 'Existing' });
    const b = await cw.push(L1, [{ externalId: 'single-2', email: 'single@example.com', firstName: 'Second' }]);
    expect(b.records[0]).toMatchObject({ outcome: 'updated', contactId: existing.id });
  });
});

describe('bad input', () => {
  it('refuses a mapping declaration of an unknown type, naming the field', async () => {
    const r = await declare(L0, 'blob_field', { dataType: 'BLOB' });
    expect(r.status).toBe(400);
    expect(JSON.stringify(await r.json())).toMatch(/body\.dataType.*expected one of TEXT, LARGE_TEXT/);
  });

  it('refuses an oversized batch, an unknown location and a missing key at request level', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ externalId: `x${i}`, email: `x${i}@example.com` }));
    const big = await cw.api(`/v1/locations/${L0}/contacts/batches`, { method: 'POST', body: { records: many } });
    expect(big.status).toBe(400);
    expect(JSON.stringify(await big.json())).toMatch(/records.*expected at most 1000 records per batch/);
    const unknownKey = (await cw.b.ctx.services.get('apiKeys').create({ name: 'x', locationIds: ['NotInstalledLoc'] }))
      .key;
    const unknown = await cw.api(`/v1/locations/NotInstalledLoc/contacts/batches`, {
      method: 'POST',
      body: { records: [{ externalId: 'a', email: 'a@example.com' }] },
      key: unknownKey,
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { message: string }).message).toMatch(
      /not installed on location NotInstalledLoc/,
    );
    const noKey = await cw.api(`/v1/locations/${L0}/contacts/batches`, {
      method: 'POST',
      body: { records: [{ externalId: 'a', email: 'a@example.com' }] },
      key: null,
    });
    expect(noKey.status).toBe(401);
  });

  it('fails invalid emails, phones and records per record, naming the field, while the rest goes on', async () => {
    const r = await cw.api(`/v1/locations/${L0}/contacts/batches`, {
      method: 'POST',
      body: {
        records: [
          { externalId: 'ok-1', email: 'ok1@example.com' },
          { externalId: 'bad-email', email: 'not-an-email' },
          { externalId: 'bad-phone', phone: '12' },
          { externalId: 'bad-phone2', phone: '+1 555 0000 0000 0000' },
          { externalId: 'none', firstName: 'NoKey' },
          { email: 'noid@example.com' },
          { externalId: 'ok-1', email: 'dup@example.com' },
          { externalId: 'extra', email: 'e@example.com', jobTitle: 'x' },
        ],
      },
    });
    expect(r.status).toBe(202);
    const a = (await r.json()) as { batchId: string; errors: string[] };
    expect(a.errors).toEqual([
      'records[1].email: expected an email address',
      'records[2].phone: expected a phone number',
      expect.stringMatching(/^records\[3\]\.phone: expected a phone number: /),
      'records[4].email: expected an email or a phone (GHL matches contacts on them)',
      'records[5].externalId: expected the caller’s record id',
      'records[6].externalId: duplicate of records[0] in this batch',
      'records[7].jobTitle: unknown field (custom fields go in customFields)',
    ]);
    const b = await cw.waitBatch(L0, a.batchId);
    expect(b.records[0]!.outcome).toBe('created');
    expect(b.records.slice(1).every((x) => x.outcome === 'failed')).toBe(true);
    expect(b.records[1]!.reason).toBe('records[1].email: expected an email address');
  });
});

describe('retention', () => {
  it('prunes finished batches older than DATA_RETENTION_DAYS, keeping the map', async () => {
    const b = await cw.push(L0, [{ externalId: 'old-1', email: 'old1@example.com' }]);
    await cw.b.ctx.db
      .updateTable('contacts_batches')
      .set({ completed_at: new Date(Date.now() - 400 * 86_400_000) })
      .where('id', '=', b.batchId)
      .execute();
    await cw.b.runMaintenance();
    expect((await cw.api(`/v1/locations/${L0}/contacts/batches/${b.batchId}`)).status).toBe(404);
    expect((await cw.api(`/v1/locations/${L0}/contacts/map/old-1`)).status).toBe(200);
  });
});

describe('sync status', () => {
  it('is reported per location in the API, the service and Prometheus', async () => {
    const b = await cw.push(L0, [
      { externalId: 'st-1', email: 'st1@example.com' },
      { externalId: 'st-2', email: 'bad' },
    ]);
    const s = (await (await cw.api(`/v1/locations/${L0}/contacts/sync-status`)).json()) as Record<string, unknown>;
    expect(s).toMatchObject({
      locationId: L0,
      status: 'partial',
      lastBatchId: b.batchId,
      counts: { created: 1, updated: 0, unchanged: 0, conflict: 0, failed: 1 },
      pendingRecords: 0,
    });
    expect(s.lastError).toBe('records[1] (st-2) failed: records[1].email: expected an email address');
    expect(Date.parse(String(s.lastSyncAt))).toBeGreaterThan(Date.now() - 60_000);
    expect((s.totals as { created: number }).created).toBeGreaterThanOrEqual(1);
    const svc = await cw.b.ctx.services.get('contacts').syncStatus(L0);
    expect(svc[0]).toMatchObject({ status: 'partial', lastBatchId: b.batchId });
    const metrics = await cw.b.ctx.metrics.registry.metrics();
    expect(metrics).toContain(`ghl_bridge_contacts_sync_status{location="${L0}",status="partial"} 1`);
    expect(metrics).toContain(`ghl_bridge_contacts_last_sync_records{location="${L0}",outcome="failed"} 1`);
    expect(metrics).toMatch(/ghl_bridge_contacts_pushed_total\{outcome="created"\} \d+/);
  });
});
