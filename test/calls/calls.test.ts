import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl, scrub } from '../../src/infra/log/logger.js';
import { waitFor } from '../helpers/store.js';
import { startReceiver } from '../events/harness.js';
import { ADMIN, PUBLIC_URL, startCalls, type CallsWorld } from './harness.js';

/** Calls (issue 15) against the emulator over real HTTP, on the store of the run (TEST_STORE). */
let t: CallsWorld;
let L0: string;
let L1: string;
let n = 0;
const newContact = (locationId = L0) =>
  t.w.emu.control.createContact({ locationId, firstName: 'Caller', phone: `+1555300${String(1000 + ++n)}` });

interface CallJson {
  id: number;
  messageId: string | null;
  contactId: string;
  status: string | null;
  disposition: string | null;
  durationSec: number | null;
  direction: string | null;
  userId: string | null;
  integrationType: string;
  sources: string[];
  recording: { url: string; signedUrl: string } | null;
  transcript: {
    state: string;
    reason: string | null;
    sentences: Array<{ text: string; speaker: number | null }>;
    text: string | null;
  };
}
const callsOf = async (contactId: string, locationId = L0) => {
  const r = await t.api(`/v1/locations/${locationId}/contacts/${contactId}/calls`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { calls: CallJson[] }).calls;
};
const eventsOf = async (callId: number, locationId = L0) => {
  const r = await t.api(`/v1/locations/${locationId}/call-events`);
  const all = ((await r.json()) as { events: Array<{ type: string; callId: number; integrationType: string }> }).events;
  return all.filter((e) => e.callId === callId);
};
const inbox = async (state: string) => {
  const r = await fetch(`${t.b.url}/admin/calls/inbox?state=${state}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return ((await r.json()) as { entries: Array<{ id: number; reason: string | null; payload: unknown }> }).entries;
};
const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** A subscriber of call.completed (the event subscriptions module), and what it received per call. */
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const delivered = (callId: number) =>
  receiver.got.filter((g) => g.body.type === 'call.completed' && g.body.data.callId === String(callId));
/** call.completed events published (stored in the events outbox) for a call: must be exactly one. */
const published = async (callId: number) =>
  (
    await t.b.ctx.db.selectFrom('event_log').select(['id', 'data']).where('type', '=', 'call.completed').execute()
  ).filter((e) => (e.data as { callId?: string }).callId === String(callId));
const completedEvent = async (callId: number) => {
  const got = await waitFor(() => (delivered(callId).length ? delivered(callId) : undefined), {
    what: `call.completed of call ${callId} delivered`,
  });
  expect(got).toHaveLength(1);
  expect(await published(callId)).toHaveLength(1);
  return got[0]!.body as unknown as { contactId: string | null; locationId: string; data: Record<string, unknown> };
};

beforeAll(async () => {
  t = await startCalls({ events: true });
  [L0, L1] = t.w.locationIds as [string, string];
  receiver = await startReceiver();
  const r = await fetch(`${t.b.url}/admin/api/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url, eventTypes: ['call.*'] }),
  });
  expect(r.status).toBe(201);
});
afterAll(async () => {
  await receiver?.close();
  await t?.close();
});

describe('workflow call webhooks', () => {
  it("GHL's standard payload (default mapping) and the call's app event make one enriched record and one event each", async () => {
    const c = newContact();
    const call = await t.ghlCall({
      locationId: L0,
      contactId: c.id,
      status: 'completed',
      duration: 42,
      transcript: ['Hi.', 'Bye.'],
    });
    const fired = await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { messageId: call.messageId, callStatus: 'Completed', disposition: 'Interested', userId: 'user1' },
    });
    expect(fired.status).toBe(202);
    const rec = await waitFor(async () => {
      const l = await callsOf(c.id);
      return l.length === 1 && l[0]!.sources.length === 2 && l[0]!.transcript.state === 'ready' ? l[0] : undefined;
    });
    expect(rec).toMatchObject({
      messageId: call.messageId,
      status: 'completed',
      disposition: 'Interested',
      durationSec: 42,
      direction: 'outbound',
      userId: 'user1',
      integrationType: 'client',
    });
    expect(rec.sources.sort()).toEqual(['app', 'workflow']);
    expect(rec.transcript.text).toBe('Hi.\nBye.');
    expect(rec.transcript.sentences.map((s) => s.speaker)).toEqual([1, 2]);
    expect(rec.recording?.url).toBe(`${PUBLIC_URL}/v1/locations/${L0}/calls/${rec.id}/recording`);
    const events = await eventsOf(rec.id);
    expect(events.map((e) => e.type).sort()).toEqual(['call.completed', 'call.disposition']);
    const completed = await completedEvent(rec.id);
    expect(completed).toMatchObject({ locationId: L0, contactId: c.id });
    expect(completed.data).toEqual({
      locationId: L0,
      callId: String(rec.id),
      contactId: c.id,
      messageId: call.messageId,
      direction: 'outbound',
      status: 'completed',
      durationSeconds: 42,
      recordingUrl: rec.recording!.url,
      hasTranscript: true,
    });
    // The workflow webhook again (GHL retries, a second workflow): still one record, no new events.
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { messageId: call.messageId, disposition: 'Interested' },
    });
    await waitFor(async () => (await inbox('received')).length === 0);
    expect(await callsOf(c.id)).toHaveLength(1);
    expect(await eventsOf(rec.id)).toHaveLength(2);
    expect(await published(rec.id)).toHaveLength(1);
  });

  it('without a message id, the nearest call message of the contact is found', async () => {
    const c = newContact();
    await t.ghlCall({
      locationId: L0,
      contactId: c.id,
      status: 'no-answer',
      date: new Date(Date.now() - 3_600_000).toISOString(),
    });
    const near = await t.ghlCall({ locationId: L0, contactId: c.id, status: 'completed', duration: 7 });
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { disposition: 'Callback' },
    });
    const rec = await waitFor(async () =>
      (await callsOf(c.id)).find((x) => x.disposition === 'Callback' && x.transcript.state === 'ready'),
    );
    expect(rec.messageId).toBe(near.messageId);
  });

  it('a custom mapping (JSON pointers) and the integration type', async () => {
    const r = await fetch(`${t.b.url}/admin/calls/endpoints/${L1}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        integrationType: 'internal',
        mapping: {
          contactId: ['/lead/id'],
          status: ['/outcome'],
          disposition: ['/result/label'],
          messageId: ['/msg'],
          duration: ['/secs'],
        },
      }),
    });
    expect(r.status).toBe(200);
    const c = newContact(L1);
    const call = await t.ghlCall({ locationId: L1, contactId: c.id, status: 'busy' });
    const res = await post(await t.workflowUrl(L1), {
      lead: { id: c.id },
      outcome: 'busy',
      result: { label: 'Not home' },
      msg: call.messageId,
      secs: '0:00',
    });
    expect(res.status).toBe(202);
    const rec = await waitFor(async () => (await callsOf(c.id, L1)).find((x) => x.disposition === 'Not home'));
    expect(rec).toMatchObject({
      status: 'busy',
      integrationType: 'internal',
      messageId: call.messageId,
      recording: null,
    });
    expect(rec.transcript.state).toBe('not_expected');
    const ev = await waitFor(async () => {
      const e = await eventsOf(rec.id, L1);
      return e.length === 2 ? e : undefined;
    });
    expect(ev.every((e) => e.integrationType === 'internal')).toBe(true);
  });

  it('an unmappable payload is kept with the reason, never dropped', async () => {
    const url = await t.workflowUrl(L0);
    const a = await post(url, { hello: 'world' });
    expect(a.status).toBe(202);
    const ja = (await a.json()) as { id: number; state: string; reason: string };
    expect(ja.state).toBe('unmappable');
    expect(ja.reason).toMatch(/^contactId: no value at \/contact_id/);
    const b = await post(url, { contact_id: newContact().id, customData: { callStatus: 'exploded' } });
    const jb = (await b.json()) as { id: number; state: string; reason: string };
    expect(jb.state).toBe('unmappable');
    expect(jb.reason).toMatch(/^status: expected one of pending, completed/);
    const kept = await inbox('unmappable');
    expect(kept.find((e) => e.id === ja.id)).toMatchObject({ payload: { hello: 'world' } });
    expect(kept.find((e) => e.id === jb.id)?.reason).toBe(jb.reason);
  });

  it('a forged call (right token, unknown contact or foreign message) emits nothing', async () => {
    const url = await t.workflowUrl(L0);
    const unknown = await post(url, {
      contact_id: 'NoSuchContact123',
      customData: { callStatus: 'completed', disposition: 'x' },
    });
    const ju = (await unknown.json()) as { id: number };
    const other = newContact();
    const foreign = await t.ghlCall({ locationId: L0, contactId: newContact().id, status: 'completed' });
    const wrong = await post(url, {
      contact_id: other.id,
      customData: { messageId: foreign.messageId, disposition: 'x' },
    });
    const jw = (await wrong.json()) as { id: number };
    const forged = await waitFor(async () => {
      const f = await inbox('forged');
      return f.some((e) => e.id === ju.id) && f.some((e) => e.id === jw.id) ? f : undefined;
    });
    expect(forged.find((e) => e.id === ju.id)?.reason).toMatch(/^contact_not_found/);
    expect(forged.find((e) => e.id === jw.id)?.reason).toMatch(/^other_contact/);
    expect(await callsOf('NoSuchContact123')).toEqual([]);
    expect(await callsOf(other.id)).toEqual([]);
    const all = (await t.b.ctx.db.selectFrom('calls').select('contact_id').execute()).map((x) => x.contact_id);
    expect(all).not.toContain(other.id);
    expect(all).not.toContain('NoSuchContact123');
  });

  it('a wrong token is refused (401) and stores nothing; a rotated token stops working', async () => {
    const before = Number(
      (await t.b.ctx.db.selectFrom('calls_inbox').select(t.b.ctx.db.fn.countAll().as('n')).executeTakeFirst())?.n,
    );
    const r = await post(`${t.b.url}/webhooks/workflow/wf_nottherighttoken`, { contact_id: 'x' });
    expect(r.status).toBe(401);
    const old = await t.workflowUrl(L1);
    const fresh = (await t.b.ctx.services.get('calls').endpoints.rotate(L1, 0)).replace(PUBLIC_URL, t.b.url);
    expect(fresh).not.toBe(old);
    expect((await post(old, { contact_id: 'x' })).status).toBe(401);
    expect((await post(fresh, { contact_id: 'x' })).status).toBe(202);
    const after = Number(
      (await t.b.ctx.db.selectFrom('calls_inbox').select(t.b.ctx.db.fn.countAll().as('n')).executeTakeFirst())?.n,
    );
    expect(after).toBe(before + 1);
  });
});

describe('one call, one record (a workflow payload without the message id)', () => {
  it("a workflow payload before GHL lists the call, then the call's app event: merged, enriched, completed once", async () => {
    const c = newContact(); // no conversation yet: GHL has no call message to find
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { callStatus: 'completed', disposition: 'Booked', userId: 'rep7' },
    });
    const first = await waitFor(async () => (await callsOf(c.id))[0]);
    expect(first).toMatchObject({ messageId: null, sources: ['workflow'] });
    expect(first.transcript).toMatchObject({ state: 'pending', reason: expect.stringMatching(/^waiting up to 3 s/) });
    const call = await t.ghlCall({ locationId: L0, contactId: c.id, status: 'completed', duration: 33 });
    const rec = await waitFor(async () => {
      const l = await callsOf(c.id);
      return l.length === 1 && l[0]!.transcript.state === 'ready' ? l[0] : undefined;
    });
    expect(rec).toMatchObject({
      id: first.id,
      messageId: call.messageId,
      disposition: 'Booked',
      userId: 'rep7',
      durationSec: 33,
      direction: 'outbound',
    });
    expect(rec.sources.sort()).toEqual(['app', 'workflow']);
    expect((await completedEvent(rec.id)).data).toMatchObject({ messageId: call.messageId, hasTranscript: true });
    // The grace job of the messageless record (due 3 s after it) runs too: still one record, one event.
    await waitFor(
      async () => {
        const jobs = await t.b.ctx.db
          .selectFrom('bridge_jobs')
          .select('id')
          .where('kind', '=', 'calls.enrich')
          .where(sql<boolean>`payload->>'callId' = ${String(rec.id)}`)
          .execute();
        return jobs.length === 0;
      },
      { what: 'every enrich job of the call finished', timeoutMs: 15_000 },
    );
    expect(await callsOf(c.id)).toHaveLength(1);
    expect(await published(rec.id)).toHaveLength(1);
  });

  it('a payload no call message matches (an older call is outside the window): completed after the grace, without it', async () => {
    const c = newContact();
    const old = await t.ghlCall({
      locationId: L0,
      contactId: c.id,
      status: 'completed',
      transcript: [],
      date: new Date(t.w.emu.clock.now() - 3 * 3_600_000).toISOString(),
    });
    await waitFor(async () => (await callsOf(c.id)).find((x) => x.messageId === old.messageId));
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { callStatus: 'no-answer', disposition: 'No answer' },
    });
    const rec = await waitFor(
      async () => (await callsOf(c.id)).find((x) => x.messageId === null && x.transcript.state === 'not_expected'),
      { timeoutMs: 15_000, what: 'the messageless call settled after the grace' },
    );
    expect(rec.transcript.reason).toMatch(/^no call message found in GHL for this contact within 900 s/);
    expect(rec.disposition).toBe('No answer');
    expect(await callsOf(c.id)).toHaveLength(2);
    expect((await completedEvent(rec.id)).data).toMatchObject({
      messageId: null,
      status: 'no-answer',
      recordingUrl: null,
      hasTranscript: false,
    });
  });
});

describe('enrichment', () => {
  it('the transcript arrives after N not-ready answers', async () => {
    const c = newContact();
    const call = await t.ghlCall({
      locationId: L0,
      contactId: c.id,
      status: 'completed',
      transcript: ['Late.'],
      transcriptDelayMs: 60_000,
    });
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { messageId: call.messageId },
    });
    const row = async () =>
      t.b.ctx.db.selectFrom('calls').selectAll().where('message_id', '=', call.messageId).executeTakeFirst();
    await waitFor(async () => ((await row())?.transcript_attempts ?? 0) >= 2);
    t.w.emu.clock.advance(60_001);
    const done = await waitFor(async () => {
      const r = await row();
      return r?.transcript_state === 'ready' ? r : undefined;
    });
    expect(done.transcript_attempts).toBeGreaterThanOrEqual(3);
    expect(done.transcript_text).toBe('Late.');
    expect((await eventsOf(Number(done.id))).map((e) => e.type)).toEqual(['call.completed']);
    // Published once, after the retries, with the transcript.
    expect((await completedEvent(Number(done.id))).data).toMatchObject({ hasTranscript: true, status: 'completed' });
  });

  it('a transcript that never arrives: kept without it, with the reason, and completed', async () => {
    const c = newContact();
    const call = await t.ghlCall({
      locationId: L0,
      contactId: c.id,
      status: 'voicemail',
      transcript: ['x'],
      transcriptDelayMs: null,
    });
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { messageId: call.messageId },
    });
    const rec = await waitFor(async () => (await callsOf(c.id)).find((x) => x.transcript.state === 'unavailable'), {
      timeoutMs: 20_000,
    });
    expect(rec.transcript.reason).toMatch(/^no transcript within 4 s of the call \(\d+ tries; last: GHL answered 404/);
    expect((await eventsOf(rec.id)).map((e) => e.type)).toEqual(['call.completed']);
    expect((await completedEvent(rec.id)).data).toMatchObject({ hasTranscript: false, status: 'voicemail' });
  });
});

describe('recording streaming', () => {
  it('needs an API key for the location (or the admin key) or a valid signed link', async () => {
    const c = newContact();
    const call = await t.ghlCall({ locationId: L0, contactId: c.id, status: 'completed', transcript: [] });
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { messageId: call.messageId },
    });
    const rec = await waitFor(async () => (await callsOf(c.id)).find((x) => x.recording));
    const path = `/v1/locations/${L0}/calls/${rec.id}/recording`;
    expect((await t.api(path, { key: null })).status).toBe(401);
    const ok = await t.api(path);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('audio/x-wav');
    expect(
      Buffer.from(await ok.arrayBuffer())
        .subarray(0, 4)
        .toString(),
    ).toBe('RIFF');
    expect((await t.api(path, { key: ADMIN })).status).toBe(200);
    const { key: other } = await t.b.ctx.services.get('apiKeys').create({ name: 'other', locationIds: [L1] });
    expect((await t.api(path, { key: other })).status).toBe(403);
    const signed = rec.recording!.signedUrl.replace(PUBLIC_URL, t.b.url);
    const s = await fetch(signed);
    expect(s.status).toBe(200);
    expect((await s.arrayBuffer()).byteLength).toBeGreaterThan(44);
    const tampered = signed.replace(/sig=[^&]+/, 'sig=AAAA');
    expect((await fetch(tampered)).status).toBe(401);
    const expired = signed.replace(/expires=\d+/, 'expires=1000');
    expect((await fetch(expired)).status).toBe(401);
  });
});

describe('recording streaming (large recordings)', () => {
  it('is piped through: bytes reach the caller before GHL has sent them all, and a caller that stops reading stops the download', async () => {
    const total = 16 * 1024 * 1024;
    const c = newContact();
    const call = await t.ghlCall({
      locationId: L0,
      contactId: c.id,
      status: 'completed',
      transcript: [],
      recordingBytes: total,
      recordingHoldAfterBytes: 1024 * 1024,
    });
    await t.fireWorkflow({
      url: await t.workflowUrl(L0),
      locationId: L0,
      contactId: c.id,
      customData: { messageId: call.messageId },
    });
    const rec = await waitFor(async () => (await callsOf(c.id)).find((x) => x.recording));
    const progress = async () =>
      (await (await fetch(`${t.w.emu.baseUrl}/_emulator/calls/${call.messageId}/recording-progress`)).json()) as {
        sentBytes: number;
        held: boolean;
        finished: boolean;
        needDrain: boolean;
        sha256: string | null;
      };
    const res = await t.api(`/v1/locations/${L0}/calls/${rec.id}/recording`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/x-wav');
    expect(res.headers.get('content-length')).toBe(String(total));
    const reader = res.body!.getReader();
    const hash = createHash('sha256');
    let got = 0;
    const readUntil = async (n: number) => {
      while (got < n) {
        const { value, done } = await reader.read();
        if (done) break;
        if (got === 0) expect(Buffer.from(value.subarray(0, 4)).toString()).toBe('RIFF');
        hash.update(value);
        got += value.byteLength;
      }
    };
    // GHL (the emulator) holds after 1 MB: the caller already has bytes, so the bridge forwards as it receives.
    await readUntil(512 * 1024);
    expect(await progress()).toMatchObject({ held: true, finished: false });
    // The caller stops reading: the bridge stops pulling, so GHL's side of the download backs up before the end.
    await fetch(`${t.w.emu.baseUrl}/_emulator/calls/${call.messageId}/recording-release`, { method: 'POST' });
    const stalled = await waitFor(
      async () => {
        const p = await progress();
        return !p.held && p.needDrain ? p : undefined;
      },
      { what: "GHL's side of the download blocked by backpressure" },
    );
    expect(stalled.finished).toBe(false);
    expect(stalled.sentBytes).toBeLessThan(total);
    await readUntil(Infinity);
    expect(got).toBe(total);
    const end = await progress();
    expect(end.finished).toBe(true);
    expect(hash.digest('hex')).toBe(end.sha256);
  });
});

describe('call provider (external telephony → GHL)', () => {
  it('inbound and outbound logs land in GHL once even when posted twice', async () => {
    const phone = '+14155552671';
    const body = {
      callId: 'pbx-in-1',
      direction: 'inbound',
      from: phone,
      to: '+14155550100',
      status: 'completed',
      durationSec: 30,
      recordingUrl: 'https://pbx.example.com/r/1.wav',
    };
    const a = await t.api(`/v1/locations/${L0}/calls`, { method: 'POST', body: JSON.stringify(body) });
    const b = await t.api(`/v1/locations/${L0}/calls`, { method: 'POST', body: JSON.stringify(body) });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    const ja = (await a.json()) as { id: number; duplicate: boolean };
    const jb = (await b.json()) as { id: number; duplicate: boolean };
    expect([ja.duplicate, jb.duplicate]).toEqual([false, true]);
    expect(jb.id).toBe(ja.id);
    const outBody = {
      callId: 'pbx-out-1',
      direction: 'outbound',
      from: '+14155550100',
      to: phone,
      status: 'no-answer',
    };
    for (let i = 0; i < 2; i++)
      expect((await t.api(`/v1/locations/${L0}/calls`, { method: 'POST', body: JSON.stringify(outBody) })).status).toBe(
        202,
      );
    const logged = () => t.w.emu.control.listMessages({ locationId: L0 }).filter((m) => m.altId?.startsWith('pbx-'));
    await waitFor(async () => {
      const rows = await t.b.ctx.db
        .selectFrom('calls_provider_logs')
        .select('state')
        .where('location_id', '=', L0)
        .execute();
      return rows.length === 2 && rows.every((r) => r.state === 'posted');
    });
    const msgs = logged();
    expect(msgs.map((m) => `${m.altId}:${m.direction}:${m.call?.status}`).sort()).toEqual([
      'pbx-in-1:inbound:completed',
      'pbx-out-1:outbound:no-answer',
    ]);
    expect(msgs.find((m) => m.altId === 'pbx-in-1')?.attachments).toEqual(['https://pbx.example.com/r/1.wav']);
    const contact = t.w.emu.control.listContacts({ locationId: L0 }).filter((x) => x.phone === phone);
    expect(contact).toHaveLength(1);
    expect(new Set(msgs.map((m) => m.contactId))).toEqual(new Set([contact[0]!.id]));
  });

  it('bad input → 400 naming the field; nothing stored', async () => {
    const bad = async (body: unknown, path: string) => {
      const r = await t.api(`/v1/locations/${L0}/calls`, { method: 'POST', body: JSON.stringify(body) });
      expect(r.status).toBe(400);
      const j = (await r.json()) as { details: Array<{ path: string }> };
      expect(j.details.map((d) => d.path)).toContain(path);
    };
    const ok = {
      callId: 'pbx-bad',
      direction: 'inbound',
      from: '+14155552672',
      to: '+14155550100',
      status: 'completed',
    };
    await bad({ ...ok, status: 'exploded' }, 'body.status');
    await bad({ ...ok, direction: 'sideways' }, 'body.direction');
    await bad({ ...ok, from: undefined }, 'body.from');
    await bad({ ...ok, durationSec: -1 }, 'body.durationSec');
    await bad({ ...ok, to: '12' }, 'body.to');
    await bad({ ...ok, from: '+1555000' }, 'body.from');
    await bad({ ...ok, recordingUrl: 'ftp://x' }, 'body.recordingUrl');
    const rows = await t.b.ctx.db
      .selectFrom('calls_provider_logs')
      .select('id')
      .where('external_id', '=', 'pbx-bad')
      .execute();
    expect(rows).toEqual([]);
    const q = await t.api(`/v1/locations/${L0}/calls?limit=0`);
    expect(q.status).toBe(400);
    expect(((await q.json()) as { details: Array<{ path: string }> }).details[0]?.path).toBe('query.limit');
    const wf = await post(await t.workflowUrl(L0), [1, 2]);
    expect(wf.status).toBe(400);
  });
});

describe('retention', () => {
  it('processed workflow payloads are pruned after DATA_RETENTION_DAYS; unmappable and forged ones are kept', async () => {
    const db = t.b.ctx.db;
    const states = async () =>
      // Workflow entries only: app events of the call logs posted above may still be arriving.
      (await db.selectFrom('calls_inbox').select('state').where('source', '=', 'workflow').execute())
        .map((r) => r.state)
        .sort();
    await waitFor(async () => !(await states()).includes('received'), { what: 'every entry processed' });
    const before = await states();
    expect(before).toContain('done');
    expect(before).toContain('unmappable');
    await db
      .updateTable('calls_inbox')
      .set({ received_at: new Date(Date.now() - 40 * 86_400_000) })
      .where('source', '=', 'workflow')
      .execute();
    await t.b.runMaintenance();
    const after = await states();
    expect(after).not.toContain('done');
    expect(after).toEqual(before.filter((s) => s !== 'done'));
    expect(await callsOf(newContact().id)).toEqual([]);
  });
});

describe('the workflow token stays out of logs', () => {
  it('is masked in logged URLs and in any log line', async () => {
    const url = await t.workflowUrl(L0);
    const token = url.split('/').at(-1)!;
    const path = new URL(url).pathname;
    expect(redactUrl(`${path}?x=1`)).toBe('/webhooks/workflow/[REDACTED]?x=1');
    expect(scrub(`{"msg":"failed","url":"${url}"}`, [])).not.toContain(token);
  });
});
