import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventsModule } from '../../src/capabilities/events/index.js';
import { startFakeReceiver, type FakeReceiver } from '../fakes/http-receiver.js';
import { startContacts, type ContactsWorld } from './harness.js';

const SECRET = `whsec_${Buffer.from('contacts-events-secret-0123456789ab').toString('base64')}`;
let cw: ContactsWorld;
let rx: FakeReceiver;

beforeAll(async () => {
  rx = await startFakeReceiver(SECRET, '/events');
  cw = await startContacts({
    locations: 1,
    modules: [eventsModule()],
    env: { EVENTS_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128', EVENTS_POLL_MS: '50' },
  });
}, 60_000);
afterAll(async () => {
  await cw?.close();
  await rx?.close();
});

it('publishes contact.synced per record (edge failures too) to subscribers, signed', async () => {
  const events = cw.b.ctx.services.get('events');
  await events.subscriptions.create({ url: rx.url, eventTypes: ['contact.synced'], secret: SECRET });
  const until = Date.now() + 5000;
  while (!events.active()) {
    if (Date.now() > until) throw new Error('subscription not active');
    await new Promise((r) => setTimeout(r, 20));
  }
  const loc = cw.w.locationIds[0]!;
  const b = await cw.push(loc, [
    { externalId: 'ev-1', email: 'ev1@example.com' },
    { externalId: 'ev-2', email: 'nope' },
  ]);
  const deadline = Date.now() + 15_000;
  while (rx.received.length < 2) {
    if (Date.now() > deadline) throw new Error(`got ${rx.received.length} deliveries`);
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(rx.received.every((d) => d.verified)).toBe(true);
  const data = rx.received
    .map((d) => (d.body as { type: string; data: Record<string, unknown> }).data)
    .sort((x, y) => String(x.externalId).localeCompare(String(y.externalId)));
  expect(data).toEqual([
    {
      locationId: loc,
      batchId: b.batchId,
      externalId: 'ev-1',
      contactId: b.records[0]!.contactId,
      outcome: 'created',
      reason: null,
    },
    {
      locationId: loc,
      batchId: b.batchId,
      externalId: 'ev-2',
      contactId: null,
      outcome: 'failed',
      reason: 'records[1].email: expected an email address',
    },
  ]);
  expect(rx.received.map((d) => (d.body as { type: string }).type)).toEqual(['contact.synced', 'contact.synced']);
});
