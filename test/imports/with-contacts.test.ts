import { afterAll, beforeAll, expect, it } from 'vitest';
import { importsModule } from '../../src/capabilities/imports/index.js';
import { startContacts, type ContactsWorld } from '../contacts/harness.js';

// The contacts and imports modules in one bridge: an import stages each GHL contact with this location's logical
// fields (the contacts module's mapping) and with the external id the contact push mapped it to.

let cw: ContactsWorld;
let L0: string;

beforeAll(async () => {
  cw = await startContacts({ locations: 1, modules: [importsModule()] });
  L0 = cw.w.locationIds[0]!;
  cw.w.emu.control.createCustomField({ locationId: L0, name: 'Job Title', dataType: 'TEXT' });
  const r = await cw.api(`/v1/locations/${L0}/contacts/mapping/job_title`, {
    method: 'PUT',
    body: { dataType: 'TEXT' },
  });
  expect(r.status).toBe(200);
}, 60_000);
afterAll(async () => cw?.close());

it('staged rows carry the logical fields and the external id of contacts the push mapped', async () => {
  const pushed = await cw.push(L0, [
    { externalId: 'crm-1', firstName: 'Ann', email: 'ann@example.com', customFields: { job_title: 'CTO' } },
  ]);
  expect(pushed.records[0]!.outcome).toBe('created');
  const ghlId = pushed.records[0]!.contactId!;
  // A contact made in GHL itself: not mapped, no logical fields.
  const other = cw.w.emu.control.createContact({ locationId: L0, firstName: 'Bo', email: 'bo@example.com' });

  const start = await cw.api(`/v1/locations/${L0}/imports`, { method: 'POST', body: {} });
  expect(start.status).toBe(202);
  const { id } = (await start.json()) as { id: string };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const p = (await (await cw.api(`/v1/locations/${L0}/imports/${id}`)).json()) as { status: string };
    if (p.status === 'completed') break;
    if (Date.now() > deadline) throw new Error(`import not completed: ${JSON.stringify(p)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const rows = (await (await cw.api(`/v1/locations/${L0}/imports/${id}/rows?limit=100`)).json()) as {
    rows: Array<{ contactId: string; mappedExternalId: string | null; logical: Record<string, unknown> }>;
  };
  const byId = new Map(rows.rows.map((r) => [r.contactId, r]));
  expect(byId.get(ghlId)).toMatchObject({ mappedExternalId: 'crm-1', logical: { job_title: 'CTO' } });
  expect(byId.get(other.id)).toMatchObject({ mappedExternalId: null, logical: {} });
});
