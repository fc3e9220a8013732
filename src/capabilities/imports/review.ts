import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { CallSummary } from '../calls/index.js';
import type { DuplicateRule, RowDecision } from './tables.js';
import './tables.js';

/** Review of an import's staged rows: listing, duplicate groups, decisions, export of the approved rows. */

export interface StagedRowView {
  contactId: string;
  page: number;
  decision: RowDecision;
  mergeInto: string | null;
  decidedAt: Date | null;
  mappedExternalId: string | null;
  email: string | null;
  phone: string | null;
  logical: Record<string, unknown>;
  original: Record<string, unknown>;
  /** The contact's calls, newest first (imports started with enrichCalls); null when not read. */
  calls: CallSummary[] | null;
}

const rowColumns = [
  'contact_id',
  'page',
  'decision',
  'merge_into',
  'decided_at',
  'mapped_external_id',
  'email_norm',
  'phone_e164',
  'logical',
  'original',
  'calls',
] as const;

type RowRecord = {
  contact_id: string;
  page: number;
  decision: RowDecision;
  merge_into: string | null;
  decided_at: Date | null;
  mapped_external_id: string | null;
  email_norm: string | null;
  phone_e164: string | null;
  logical: Record<string, unknown>;
  original: Record<string, unknown>;
  calls: CallSummary[] | null;
};

const viewOf = (r: RowRecord): StagedRowView => ({
  contactId: r.contact_id,
  page: r.page,
  decision: r.decision,
  mergeInto: r.merge_into,
  decidedAt: r.decided_at,
  mappedExternalId: r.mapped_external_id,
  email: r.email_norm,
  phone: r.phone_e164,
  logical: r.logical,
  original: r.original,
  calls: r.calls,
});

/** Rows in contact id order, `limit` after the `after` cursor. */
export async function listRows(
  db: Db,
  importId: string,
  q: { decision?: RowDecision | undefined; after?: string | undefined; limit: number },
): Promise<{ rows: StagedRowView[]; nextAfter: string | null }> {
  let s = db.selectFrom('contact_import_rows').select(rowColumns).where('import_id', '=', importId);
  if (q.decision) s = s.where('decision', '=', q.decision);
  if (q.after) s = s.where('contact_id', '>', q.after);
  const rows = await s.orderBy('contact_id').limit(q.limit).execute();
  return { rows: rows.map(viewOf), nextAfter: rows.length === q.limit ? rows.at(-1)!.contact_id : null };
}

export async function countRows(db: Db, importId: string): Promise<Record<RowDecision, number>> {
  const r = await db
    .selectFrom('contact_import_rows')
    .select(['decision', sql<number>`count(*)::int`.as('n')])
    .where('import_id', '=', importId)
    .groupBy('decision')
    .execute();
  const out: Record<RowDecision, number> = { pending: 0, approved: 0, rejected: 0, merged: 0 };
  for (const x of r) out[x.decision] = Number(x.n);
  return out;
}

export interface GroupView {
  id: number;
  rule: DuplicateRule;
  /** The shared e-mail or phone; for name_company the smallest member id. */
  key: string;
  score: number;
  size: number;
  /** A member is already in the bridge's contact map. */
  againstMapped: boolean;
  members: Array<{
    contactId: string;
    name: string | null;
    email: string | null;
    phone: string | null;
    company: string | null;
    decision: RowDecision;
    mergeInto: string | null;
    mappedExternalId: string | null;
  }>;
}

/** Duplicate groups in id order (paginated), each with its members. */
export async function listGroups(
  db: Db,
  importId: string,
  q: { rule?: DuplicateRule | undefined; after?: number | undefined; limit: number },
): Promise<{ groups: GroupView[]; nextAfter: number | null }> {
  let s = db
    .selectFrom('contact_import_groups')
    .select(['id', 'rule', 'match_key', 'score', 'size'])
    .where('import_id', '=', importId);
  if (q.rule) s = s.where('rule', '=', q.rule);
  if (q.after !== undefined) s = s.where('id', '>', q.after);
  const groups = await s.orderBy('id').limit(q.limit).execute();
  const members = groups.length
    ? await db
        .selectFrom('contact_import_group_members as m')
        .innerJoin('contact_import_rows as r', (j) =>
          j.onRef('r.import_id', '=', 'm.import_id').onRef('r.contact_id', '=', 'm.contact_id'),
        )
        .select([
          'm.group_id',
          'r.contact_id',
          'r.email_norm',
          'r.phone_e164',
          'r.decision',
          'r.merge_into',
          'r.mapped_external_id',
          sql<string | null>`r.original->>'companyName'`.as('company'),
          sql<
            string | null
          >`coalesce(nullif(trim(concat_ws(' ', r.original->>'firstName', r.original->>'lastName')), ''), r.original->>'name')`.as(
            'name',
          ),
        ])
        .where(
          'm.group_id',
          'in',
          groups.map((g) => g.id),
        )
        .orderBy('m.group_id')
        .orderBy('r.contact_id')
        .execute()
    : [];
  const by = new Map<number, GroupView['members']>();
  for (const m of members) {
    const list = by.get(m.group_id) ?? [];
    list.push({
      contactId: m.contact_id,
      name: m.name,
      email: m.email_norm,
      phone: m.phone_e164,
      company: m.company,
      decision: m.decision,
      mergeInto: m.merge_into,
      mappedExternalId: m.mapped_external_id,
    });
    by.set(m.group_id, list);
  }
  return {
    groups: groups.map((g) => {
      const ms = by.get(g.id) ?? [];
      return {
        id: g.id,
        rule: g.rule,
        key: g.match_key,
        score: g.score,
        size: g.size,
        againstMapped: ms.some((m) => m.mappedExternalId !== null),
        members: ms,
      };
    }),
    nextAfter: groups.length === q.limit ? groups.at(-1)!.id : null,
  };
}

export interface DecisionInput {
  contactId: string;
  decision: 'approve' | 'reject' | 'merge' | 'reset';
  /** For merge: the staged contact this one is merged into. */
  into?: string | undefined;
}

export interface DecisionResult {
  contactId: string;
  ok: boolean;
  decision?: RowDecision;
  mergeInto?: string | null;
  error?: { path: string; message: string };
}

const DECISION: Record<DecisionInput['decision'], RowDecision> = {
  approve: 'approved',
  reject: 'rejected',
  merge: 'merged',
  reset: 'pending',
};

/**
 * Records decisions one by one (each its own outcome; a refused one does not stop the rest). A merge names a staged
 * contact of the same import that is not itself merged; a contact others are merged into cannot be merged itself.
 */
export async function decide(db: Db, importId: string, list: DecisionInput[]): Promise<DecisionResult[]> {
  const out: DecisionResult[] = [];
  for (const [i, d] of list.entries()) {
    const at = `body.decisions.${i}`;
    const r = await db.transaction().execute(async (trx): Promise<DecisionResult> => {
      const row = await trx
        .selectFrom('contact_import_rows')
        .select(['contact_id', 'decision'])
        .where('import_id', '=', importId)
        .where('contact_id', '=', d.contactId)
        .forUpdate()
        .executeTakeFirst();
      if (!row)
        return {
          contactId: d.contactId,
          ok: false,
          error: { path: `${at}.contactId`, message: 'expected a contact staged by this import' },
        };
      let into: string | null = null;
      if (d.decision === 'merge') {
        if (!d.into)
          return {
            contactId: d.contactId,
            ok: false,
            error: { path: `${at}.into`, message: 'expected the contact id to merge into' },
          };
        if (d.into === d.contactId)
          return {
            contactId: d.contactId,
            ok: false,
            error: { path: `${at}.into`, message: 'expected another contact than the one merged' },
          };
        const target = await trx
          .selectFrom('contact_import_rows')
          .select(['decision'])
          .where('import_id', '=', importId)
          .where('contact_id', '=', d.into)
          .forUpdate()
          .executeTakeFirst();
        if (!target)
          return {
            contactId: d.contactId,
            ok: false,
            error: { path: `${at}.into`, message: 'expected a contact staged by this import' },
          };
        if (target.decision === 'merged' || target.decision === 'rejected')
          return {
            contactId: d.contactId,
            ok: false,
            error: { path: `${at}.into`, message: `expected a contact that is not ${target.decision} itself` },
          };
        into = d.into;
      } else if (d.into !== undefined)
        return { contactId: d.contactId, ok: false, error: { path: `${at}.into`, message: 'only a merge takes into' } };
      if (d.decision === 'merge' || d.decision === 'reject') {
        const sources = await trx
          .selectFrom('contact_import_rows')
          .select(sql<number>`count(*)::int`.as('n'))
          .where('import_id', '=', importId)
          .where('merge_into', '=', d.contactId)
          .executeTakeFirstOrThrow();
        if (Number(sources.n) > 0)
          return {
            contactId: d.contactId,
            ok: false,
            error: {
              path: `${at}.decision`,
              message: `${sources.n} contact(s) are merged into this one; decide them again first`,
            },
          };
      }
      const decision = DECISION[d.decision];
      await trx
        .updateTable('contact_import_rows')
        .set({ decision, merge_into: into, decided_at: decision === 'pending' ? null : sql`now()` })
        .where('import_id', '=', importId)
        .where('contact_id', '=', d.contactId)
        .execute();
      return { contactId: d.contactId, ok: true, decision, mergeInto: into };
    });
    out.push(r);
  }
  return out;
}

export interface ExportRecord {
  contactId: string;
  /** Staged contacts merged into this one. */
  mergedFrom: string[];
  mappedExternalId: string | null;
  logical: Record<string, unknown>;
  original: Record<string, unknown>;
}

/** The approved rows in contact id order, read `chunk` at a time (never the whole set in memory). */
export async function* approvedRows(db: Db, importId: string, chunk = 500): AsyncGenerator<ExportRecord> {
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('contact_import_rows')
      .select(['contact_id', 'mapped_external_id', 'logical', 'original'])
      .where('import_id', '=', importId)
      .where('decision', '=', 'approved')
      .where('contact_id', '>', after)
      .orderBy('contact_id')
      .limit(chunk)
      .execute();
    if (!rows.length) return;
    const merged = await db
      .selectFrom('contact_import_rows')
      .select(['contact_id', 'merge_into'])
      .where('import_id', '=', importId)
      .where('decision', '=', 'merged')
      .where(
        'merge_into',
        'in',
        rows.map((r) => r.contact_id),
      )
      .orderBy('contact_id')
      .execute();
    const from = new Map<string, string[]>();
    for (const m of merged) from.set(m.merge_into!, [...(from.get(m.merge_into!) ?? []), m.contact_id]);
    for (const r of rows)
      yield {
        contactId: r.contact_id,
        mergedFrom: from.get(r.contact_id) ?? [],
        mappedExternalId: r.mapped_external_id,
        logical: r.logical,
        original: r.original,
      };
    if (rows.length < chunk) return;
    after = rows.at(-1)!.contact_id;
  }
}

export const CSV_COLUMNS = [
  'contactId',
  'firstName',
  'lastName',
  'email',
  'phone',
  'companyName',
  'tags',
  'mergedFrom',
  'mappedExternalId',
  'logical',
] as const;

/**
 * RFC 4180 quoting. A cell that a spreadsheet would run as a formula (leading `=` or `@`) gets a leading `'`; `+` and
 * `-` are left alone, since E.164 phones start with `+`.
 */
function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  if (/^[=@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(r: ExportRecord): string {
  const o = r.original;
  const cells = [
    r.contactId,
    o.firstName,
    o.lastName,
    o.email,
    o.phone,
    o.companyName,
    Array.isArray(o.tags) ? (o.tags as unknown[]).join(';') : '',
    r.mergedFrom.join(';'),
    r.mappedExternalId,
    r.logical,
  ];
  return cells.map(csvCell).join(',') + '\r\n';
}

/** JSONL or CSV text of the approved rows, chunk by chunk. */
export async function* exportText(db: Db, importId: string, format: 'jsonl' | 'csv'): AsyncGenerator<string> {
  if (format === 'csv') yield CSV_COLUMNS.join(',') + '\r\n';
  let buf = '';
  for await (const r of approvedRows(db, importId)) {
    buf += format === 'csv' ? csvLine(r) : JSON.stringify(r) + '\n';
    if (buf.length > 64 * 1024) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}
