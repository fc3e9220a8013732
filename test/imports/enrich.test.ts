import { afterAll, beforeAll, expect, it } from 'vitest';
import { startImports, type ImportWorld } from './harness.js';

// Call-history enrichment of an import (enrichCalls): after duplicate detection every staged contact gets its calls,
// read from its conversation's call messages in GHL, and only then is the import completed.

let x: ImportWorld;
let A: string;

beforeAll(async () => {
  x = await startImports({ locations: 1 });
  A = x.w.locationIds[0]!;
}, 60_000);
afterAll(async () => x?.close());

const createCall = async (body: Record<string, unknown>) => {
  const r = await fetch(`${x.w.emu.baseUrl}/_emulator/calls`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(r.status).toBe(201);
  return (await r.json()) as { messageId: string };
};

it("stages each contact's calls (direction, status, duration, whether a recording can exist), newest first", async () => {
  const c = x.w.emu.control;
  const talker = c.createContact({ locationId: A, firstName: 'Tal', phone: '+14155550101' });
  const quiet = c.createContact({ locationId: A, firstName: 'Qui', email: 'qui@example.com' });
  const missed = c.createContact({ locationId: A, firstName: 'Mis', phone: '+14155550102' });
  const older = await createCall({
    locationId: A,
    contactId: talker.id,
    direction: 'inbound',
    status: 'completed',
    duration: 42,
    date: '2026-11-01T10:00:00.000Z',
  });
  const newer = await createCall({
    locationId: A,
    contactId: talker.id,
    direction: 'outbound',
    status: 'voicemail',
    duration: 12,
    date: '2026-11-02T10:00:00.000Z',
  });
  const noAnswer = await createCall({
    locationId: A,
    contactId: missed.id,
    direction: 'outbound',
    status: 'no-answer',
    duration: 0,
  });
  const callsBefore = c.listApiCalls().length;

  const started = await x.start(A, { enrichCalls: true, pageSize: 2 });
  expect(started).toMatchObject({ enrichCalls: true, rowsEnriched: 0 });
  const done = await x.until(A, started.id);
  expect(done).toMatchObject({ status: 'completed', rowsDone: 3, rowsEnriched: 3 });

  const { body } = await x.json<{
    rows: Array<{ contactId: string; calls: Array<Record<string, unknown>> | null }>;
  }>(`/v1/locations/${A}/imports/${done.id}/rows?limit=10`);
  const calls = new Map(body.rows.map((r) => [r.contactId, r.calls]));
  expect(calls.get(talker.id)).toEqual([
    {
      messageId: newer.messageId,
      at: '2026-11-02T10:00:00.000Z',
      direction: 'outbound',
      status: 'voicemail',
      durationSeconds: 12,
      recordingExpected: true,
    },
    {
      messageId: older.messageId,
      at: '2026-11-01T10:00:00.000Z',
      direction: 'inbound',
      status: 'completed',
      durationSeconds: 42,
      recordingExpected: true,
    },
  ]);
  expect(calls.get(missed.id)).toEqual([
    expect.objectContaining({ messageId: noAnswer.messageId, status: 'no-answer', recordingExpected: false }),
  ]);
  expect(calls.get(quiet.id)).toEqual([]);

  // Each contact: one conversation search, and one call-message read per conversation it has.
  const made = c.listApiCalls().slice(callsBefore);
  const searches = made.filter((m) => m.path === '/conversations/search');
  expect(searches).toHaveLength(3);
  const reads = made.filter((m) => /^\/conversations\/[^/]+\/messages$/.test(m.path));
  expect(reads).toHaveLength(2);
});

it('an import without enrichCalls reads no call history', async () => {
  const callsBefore = x.w.emu.control.listApiCalls().length;
  const started = await x.start(A);
  const done = await x.until(A, started.id);
  expect(done).toMatchObject({ enrichCalls: false, rowsEnriched: 0 });
  const made = x.w.emu.control.listApiCalls().slice(callsBefore);
  expect(made.filter((m) => m.path.startsWith('/conversations'))).toEqual([]);
  const { body } = await x.json<{ rows: Array<{ calls: unknown }> }>(`/v1/locations/${A}/imports/${done.id}/rows`);
  expect(body.rows.every((r) => r.calls === null)).toBe(true);
});
