import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/store.js';
import { startReceiver } from '../events/harness.js';
import { pairsOf, startImports, type ImportWorld, type Progress } from './harness.js';

/**
 * Contact import end to end through the emulator: the walk (pages, checkpoint, progress, metrics, import.completed),
 * duplicate groups against planted duplicates (precision and recall), review decisions and export, cancel and
 * resume, bad input. One bridge for the file; each part uses its own location or import.
 */
let x: ImportWorld;
let A: string;
let B: string;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const N = 2000;
const DUPS = { email: 20, phone: 20, nameCompany: 20 };
let planted: Array<{ rule: string; originalId: string; duplicateId: string }>;
let done: Progress;

beforeAll(async () => {
  x = await startImports();
  [A, B] = x.w.locationIds as [string, string];
  receiver = await startReceiver();
  const sub = await x.json(`/admin/api/subscriptions`, {
    method: 'POST',
    body: JSON.stringify({ url: receiver.url, eventTypes: ['import.*'] }),
    headers: { 'content-type': 'application/json' },
  });
  expect(sub.status).toBe(201);
  const events = x.b.ctx.services.get('events');
  await waitFor(() => events.active(), { what: 'the subscription seen by the bridge' });
  planted = x.bulk({ locationId: A, count: N, seed: 3, duplicates: DUPS }).planted;
}, 60_000);
afterAll(async () => {
  await receiver?.close();
  await x?.close();
});

const searchCalls = () => x.w.emu.control.listApiCalls({ method: 'POST', pathPattern: '^/contacts/search$' });

describe('import walk', () => {
  it('stages every contact once, a page per search at the largest page size, with progress, metrics and import.completed', async () => {
    const before = searchCalls().length;
    const started = await x.start(A);
    expect(started).toMatchObject({ status: 'running', pageSize: 500, pagesDone: 0, rowsDone: 0, locationId: A });
    done = await x.until(A, started.id);
    const total = N + DUPS.email + DUPS.phone + DUPS.nameCompany;
    expect(done).toMatchObject({
      rowsDone: total,
      total,
      pagesDone: Math.ceil(total / 500),
      percent: 100,
      etaSeconds: 0,
    });
    expect(done.rowsPerSecond).toBeGreaterThan(0);
    expect(done.decisions).toEqual({ pending: total, approved: 0, rejected: 0, merged: 0 });
    // One successful search per page, no page read twice.
    const calls = searchCalls().slice(before);
    expect(calls.filter((c) => c.status === 200)).toHaveLength(done.pagesDone);

    // Every GHL contact is staged, with its original record and (no contacts mapping loaded) empty logical fields.
    const staged: Array<{ contactId: string; original: Record<string, unknown>; logical: unknown }> = [];
    let after: string | null = null;
    do {
      const r: { body: { rows: typeof staged; nextAfter: string | null } } = await x.json(
        `/v1/locations/${A}/imports/${done.id}/rows?limit=500${after ? `&after=${after}` : ''}`,
      );
      staged.push(...r.body.rows);
      after = r.body.nextAfter;
    } while (after);
    const ghl = x.w.emu.control.listContacts({ locationId: A });
    expect(staged.map((s) => s.contactId).sort()).toEqual(ghl.map((c) => c.id).sort());
    const one = staged.find((s) => s.contactId === ghl[0]!.id)!;
    expect(one.original).toMatchObject({ id: ghl[0]!.id, email: ghl[0]!.email, firstName: ghl[0]!.firstName });
    expect(one.logical).toEqual({});

    const metrics = await (await fetch(`${x.b.url}/metrics`)).text();
    expect(metrics).toContain(`ghl_bridge_import_rows_done{location="${A}"} ${total}`);
    expect(metrics).toContain(`ghl_bridge_import_pages_done{location="${A}"} ${done.pagesDone}`);
    expect(metrics).toContain(`ghl_bridge_import_rows_total{location="${A}"} ${total}`);
    expect(metrics).toContain(`ghl_bridge_import_running{location="${A}"} 0`);
    expect(metrics).toContain(`ghl_bridge_import_rows_staged_total{location="${A}"} ${total}`);

    const ev = await waitFor(
      () => receiver.got.find((g) => g.body.type === 'import.completed' && g.body.data.importId === done.id),
      { what: 'import.completed' },
    );
    expect(ev.body.data).toEqual({
      locationId: A,
      importId: done.id,
      status: 'completed',
      rows: total,
      duplicateGroups: done.duplicateGroups,
      error: null,
    });
  }, 90_000);

  it('finds the planted duplicates: precision and recall of the pairs, each group with its rule and score', async () => {
    const groups: Array<{
      id: number;
      rule: string;
      score: number;
      size: number;
      members: Array<{ contactId: string }>;
    }> = [];
    let after: number | null = null;
    do {
      const r: { body: { groups: typeof groups; nextAfter: number | null } } = await x.json(
        `/v1/locations/${A}/imports/${done.id}/duplicates?limit=25${after !== null ? `&after=${after}` : ''}`,
      );
      groups.push(...r.body.groups);
      after = r.body.nextAfter;
    } while (after !== null);
    expect(groups).toHaveLength(done.duplicateGroups);
    for (const g of groups) {
      expect(g.members).toHaveLength(g.size);
      if (g.rule === 'name_company') {
        expect(g.score).toBeGreaterThanOrEqual(0.85);
        expect(g.score).toBeLessThan(1);
      } else expect(g.score).toBe(1);
    }
    const predicted = pairsOf(groups);
    const truth = new Set(planted.map((p) => [p.originalId, p.duplicateId].sort().join(' ')));
    const hit = [...predicted].filter((p) => truth.has(p)).length;
    const precision = hit / predicted.size;
    const recall = hit / truth.size;
    console.log(
      `duplicates: ${predicted.size} pairs found, ${truth.size} planted; precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}`,
    );
    expect(precision).toBeGreaterThanOrEqual(0.95);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    // Per rule: every planted pair is found by its own rule.
    for (const rule of ['email', 'phone', 'name_company']) {
      const byRule = pairsOf(groups.filter((g) => g.rule === rule));
      const want = planted.filter((p) => p.rule === rule).map((p) => [p.originalId, p.duplicateId].sort().join(' '));
      expect(want.filter((p) => byRule.has(p)).length / want.length, rule).toBeGreaterThanOrEqual(0.95);
    }
    const filtered = await x.json<{ groups: Array<{ rule: string }> }>(
      `/v1/locations/${A}/imports/${done.id}/duplicates?rule=phone&limit=200`,
    );
    expect(filtered.body.groups.length).toBe(groups.filter((g) => g.rule === 'phone').length);
    expect(filtered.body.groups.every((g) => g.rule === 'phone')).toBe(true);
  });
});

describe('review', () => {
  it('approve, reject and merge-into, each with its own outcome; the approved rows export as JSONL and CSV', async () => {
    const [p1, p2, p3] = planted.filter((p) => p.rule === 'name_company');
    const base = `/v1/locations/${A}/imports/${done.id}`;
    const decide = (decisions: unknown[]) =>
      x.json<{
        results: Array<{ ok: boolean; error?: { path: string; message: string } }>;
        applied: number;
        refused: number;
      }>(`${base}/decisions`, { method: 'POST', body: JSON.stringify({ decisions }) });
    const r = await decide([
      { contactId: p1!.originalId, decision: 'approve' },
      { contactId: p1!.duplicateId, decision: 'merge', into: p1!.originalId },
      { contactId: p2!.originalId, decision: 'approve' },
      { contactId: p2!.duplicateId, decision: 'reject' },
      { contactId: 'notStagedContact000', decision: 'approve' },
      { contactId: p3!.duplicateId, decision: 'merge', into: p3!.duplicateId },
      { contactId: p3!.duplicateId, decision: 'merge', into: p2!.duplicateId },
      { contactId: p3!.originalId, decision: 'merge' },
    ]);
    expect(r.status).toBe(200);
    expect(r.body.applied).toBe(4);
    expect(r.body.refused).toBe(4);
    expect(r.body.results.slice(4).map((o) => o.error)).toEqual([
      { path: 'body.decisions.4.contactId', message: 'expected a contact staged by this import' },
      { path: 'body.decisions.5.into', message: 'expected another contact than the one merged' },
      { path: 'body.decisions.6.into', message: 'expected a contact that is not rejected itself' },
      { path: 'body.decisions.7.into', message: 'expected the contact id to merge into' },
    ]);
    // A contact others are merged into cannot be merged or rejected before they are decided again.
    const blocked = await decide([{ contactId: p1!.originalId, decision: 'reject' }]);
    expect(blocked.body.results[0]!.error?.path).toBe('body.decisions.0.decision');

    const approved = await x.json<{ rows: Array<{ contactId: string }> }>(`${base}/rows?decision=approved`);
    expect(approved.body.rows.map((r2) => r2.contactId).sort()).toEqual([p1!.originalId, p2!.originalId].sort());

    const jsonl = await x.api(`${base}/export?format=jsonl`);
    expect(jsonl.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await jsonl.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { contactId: string; mergedFrom: string[]; original: { id: string } });
    expect(lines.map((l) => l.contactId)).toEqual([p1!.originalId, p2!.originalId].sort());
    const first = lines.find((l) => l.contactId === p1!.originalId)!;
    expect(first.mergedFrom).toEqual([p1!.duplicateId]);
    expect(first.original.id).toBe(p1!.originalId);
    expect(lines.find((l) => l.contactId === p2!.originalId)!.mergedFrom).toEqual([]);

    const csv = await x.api(`${base}/export?format=csv`);
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    const rows = (await csv.text()).trim().split('\r\n');
    expect(rows[0]).toBe(
      'contactId,firstName,lastName,email,phone,companyName,tags,mergedFrom,mappedExternalId,logical',
    );
    expect(rows).toHaveLength(3);
    const c1 = x.w.emu.control.listContacts({ locationId: A }).find((c) => c.id === p1!.originalId)!;
    const line = rows.find((l) => l.startsWith(p1!.originalId))!;
    expect(line).toContain(`,${c1.firstName},${c1.lastName},${c1.email},${c1.phone},`);
    expect(line).toContain(`,${p1!.duplicateId},`);

    // Reset puts a row back to pending.
    expect((await decide([{ contactId: p2!.duplicateId, decision: 'reset' }])).body.applied).toBe(1);
    const p = (await x.progress(A, done.id)).decisions!;
    expect(p).toMatchObject({ approved: 2, merged: 1, rejected: 0 });
  });
});

describe('cancel and resume', () => {
  it('a cancelled import stages nothing more; resumed, it continues from its checkpoint and stages every contact once', async () => {
    x.bulk({ locationId: B, count: 3000, seed: 9 });
    const s = await x.start(B, { pageSize: 100 });
    const mid = await waitFor(
      async () => {
        const p = await x.progress(B, s.id);
        return p.pagesDone >= 2 ? p : undefined;
      },
      { what: 'two pages', intervalMs: 10 },
    );
    // In flight: the numbers a progress bar needs.
    expect(mid.status).toBe('running');
    expect(mid.total).toBe(3000);
    expect(mid.rowsDone).toBe(mid.pagesDone * 100);
    expect(mid.percent).toBeCloseTo((mid.rowsDone / 3000) * 100, 1);
    expect(mid.rowsPerSecond).toBeGreaterThan(0);
    expect(mid.etaSeconds).toBeGreaterThanOrEqual(0);
    expect(mid.etaSeconds).toBeLessThanOrEqual(Math.ceil((3000 - mid.rowsDone) / mid.rowsPerSecond) + 1);
    // The next searches fail for a while (GHL 5xx, retried by the client): the import is cancelled meanwhile.
    x.w.emu.control.injectFault({ pathPattern: '/contacts/search', method: 'POST', times: 3, kind: '500' });
    const c = await x.json<Progress>(`/v1/locations/${B}/imports/${s.id}/cancel`, { method: 'POST' });
    expect(c.status).toBe(200);
    expect(c.body.status).toBe('cancelled');
    expect(c.body.rowsDone).toBeLessThan(3000);
    // Once the page job in flight (if any) has ended without staging its page, nothing of this import is queued.
    // Faults it did not consume are absorbed by the client's retries after the resume.
    await waitFor(
      async () =>
        (
          await x.b.ctx.db
            .selectFrom('bridge_jobs')
            .select('id')
            .where('kind', '=', 'import.page')
            .where('ordering_key', '=', `import:${s.id}`)
            .execute()
        ).length === 0,
      { what: 'no page job left', timeoutMs: 30_000 },
    );
    const still = await x.progress(B, s.id);
    expect(still).toMatchObject({ status: 'cancelled', rowsDone: c.body.rowsDone, pagesDone: c.body.pagesDone });
    expect((await x.json(`/v1/locations/${B}/imports/${s.id}/cancel`, { method: 'POST' })).status).toBe(409);
    const ev = await waitFor(
      () => receiver.got.find((g) => g.body.type === 'import.completed' && g.body.data.importId === s.id),
      { what: 'import.completed (cancelled)' },
    );
    expect(ev.body.data).toMatchObject({ status: 'cancelled', rows: c.body.rowsDone });

    const searchesBefore = searchCalls().filter((k) => k.status === 200).length;
    const r = await x.json<Progress>(`/v1/locations/${B}/imports/${s.id}/resume`, { method: 'POST' });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ status: 'running', pagesDone: c.body.pagesDone });
    const fin = await x.until(B, s.id);
    expect(fin).toMatchObject({ rowsDone: 3000, total: 3000, pagesDone: 31 });
    // The resumed run read only the pages not yet staged (30 of 100 and the empty last one).
    expect(searchCalls().filter((k) => k.status === 200).length - searchesBefore).toBe(31 - c.body.pagesDone);
    const rows = await x.b.ctx.db
      .selectFrom('contact_import_rows')
      .select('contact_id')
      .where('import_id', '=', s.id)
      .execute();
    expect(rows.map((q) => q.contact_id).sort()).toEqual(
      x.w.emu.control
        .listContacts({ locationId: B })
        .map((q) => q.id)
        .sort(),
    );
    expect((await x.json(`/v1/locations/${B}/imports/${s.id}/resume`, { method: 'POST' })).status).toBe(409);
    expect(x.w.emu.control.listFaults()).toEqual([]);

    // Deleted with its rows; an import in progress cannot be.
    expect((await x.api(`/v1/locations/${B}/imports/${s.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await x.json(`/v1/locations/${B}/imports/${s.id}`)).status).toBe(404);
    expect(
      await x.b.ctx.db.selectFrom('contact_import_rows').select('contact_id').where('import_id', '=', s.id).execute(),
    ).toEqual([]);
  }, 90_000);
});

describe('bad input', () => {
  it('names the field or the state; nothing is started', async () => {
    const big = await x.json<{ details: Array<{ path: string; message: string }> }>(`/v1/locations/${A}/imports`, {
      method: 'POST',
      body: JSON.stringify({ pageSize: 501 }),
    });
    expect(big.status).toBe(400);
    expect(big.body.details[0]).toMatchObject({ path: 'body.pageSize' });
    expect(big.body.details[0]!.message).toMatch(/at most 500/);
    const unknown = await x.json<{ details: Array<{ path: string }> }>(`/v1/locations/NoSuchLocation/imports`, {
      method: 'POST',
      body: '{}',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.details[0]!.path).toBe('params.locationId');
    expect((await x.api(`/v1/locations/${A}/imports`, { method: 'POST', body: '{}', key: null })).status).toBe(401);
    const missing = await x.json<{ details: Array<{ path: string }> }>(`/v1/locations/${A}/imports/imp_nope`);
    expect(missing.status).toBe(404);
    expect(missing.body.details[0]!.path).toBe('params.importId');
    const tooMany = await x.json<{ details: Array<{ path: string }> }>(
      `/v1/locations/${A}/imports/${done.id}/decisions`,
      {
        method: 'POST',
        body: JSON.stringify({
          decisions: Array.from({ length: 1001 }, () => ({ contactId: 'a', decision: 'approve' })),
        }),
      },
    );
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.details[0]!.path).toBe('body.decisions');
    const badFormat = await x.json<{ details: Array<{ path: string }> }>(
      `/v1/locations/${A}/imports/${done.id}/export?format=xml`,
    );
    expect(badFormat.status).toBe(400);
    expect(badFormat.body.details[0]!.path).toBe('query.format');
    // One import per location at a time.
    x.w.emu.control.injectFault({ pathPattern: '/contacts/search', method: 'POST', times: 2, kind: '500' });
    const first = await x.start(A);
    const second = await x.json<{ details: Array<{ path: string }>; message: string }>(`/v1/locations/${A}/imports`, {
      method: 'POST',
      body: '{}',
    });
    expect(second.status).toBe(409);
    expect(second.body.message).toContain(first.id);
    const busy = await x.json<{ message: string }>(`/v1/locations/${A}/imports/${first.id}`, { method: 'DELETE' });
    expect(busy.status).toBe(409);
    expect(busy.body.message).toMatch(/cancel it before deleting it/);
    await x.until(A, first.id);
  }, 60_000);
});
