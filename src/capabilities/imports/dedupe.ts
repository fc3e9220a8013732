import { distance } from 'fastest-levenshtein';
import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import './tables.js';

/**
 * Duplicate detection over one import's staged rows, in three rules:
 * - `email`: the same normalised e-mail (score 1);
 * - `phone`: the same E.164 phone (score 1);
 * - `name_company`: near-identical name and company (Levenshtein similarity of the folded, sorted name tokens and of
 *   the folded company), compared only within blocks (a name token + the company's first letters), never all pairs.
 * The first two are one grouped SQL statement each; the third streams the blocks in key order, holding one chunk and
 * the matched pairs only, so memory stays flat with the import's size.
 */
export interface DedupeSettings {
  /** Minimum name similarity (0–1). */
  nameMin: number;
  /** Minimum company similarity (0–1). */
  companyMin: number;
  /** Blocks larger than this are skipped (counted): they would cost quadratic time and mean a key that says little. */
  maxBlock: number;
  /** Block rows read per statement. */
  chunk: number;
}

export const DEDUPE_DEFAULTS: DedupeSettings = { nameMin: 0.85, companyMin: 0.85, maxBlock: 500, chunk: 5000 };

export interface DedupeResult {
  groups: number;
  byRule: { email: number; phone: number; name_company: number };
  skippedBlocks: number;
}

/** 1 − edit distance / longer length: 1 for equal strings. */
export function similarity(a: string, b: string): number {
  if (a === b) return 1;
  const n = Math.max(a.length, b.length);
  return n === 0 ? 1 : 1 - distance(a, b) / n;
}

/** Name + company score of two rows, or null when they are not near-identical. */
export function nameCompanyScore(
  a: { name: string; company: string },
  b: { name: string; company: string },
  s: Pick<DedupeSettings, 'nameMin' | 'companyMin'> = DEDUPE_DEFAULTS,
): number | null {
  const n = similarity(a.name, b.name);
  if (n < s.nameMin) return null;
  const c = similarity(a.company, b.company);
  if (c < s.companyMin) return null;
  return Math.round((0.6 * n + 0.4 * c) * 1000) / 1000;
}

class UnionFind {
  readonly parent = new Map<string, string>();
  find(x: string): string {
    let root = x;
    for (let p = this.parent.get(root); p !== undefined && p !== root; p = this.parent.get(root)) root = p;
    if (!this.parent.has(root)) this.parent.set(root, root);
    // Path compression: every node on the way points at the root.
    for (let cur = x; cur !== root;) {
      const next = this.parent.get(cur)!;
      this.parent.set(cur, root);
      cur = next;
    }
    return root;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
  }
}

/** Replaces the import's duplicate groups with freshly computed ones. Idempotent (a retried job recomputes). */
export async function detectDuplicates(
  db: Db,
  importId: string,
  settings: DedupeSettings = DEDUPE_DEFAULTS,
  signal?: AbortSignal,
): Promise<DedupeResult> {
  await db.deleteFrom('contact_import_groups').where('import_id', '=', importId).execute();
  const byRule = { email: 0, phone: 0, name_company: 0 };
  for (const [rule, col] of [
    ['email', 'email_norm'],
    ['phone', 'phone_e164'],
  ] as const) {
    await db.transaction().execute(async (trx) => {
      const r = await sql`
        insert into contact_import_groups (import_id, rule, match_key, score, size)
        select import_id, ${rule}, ${sql.ref(col)}, 1, count(*)::int from contact_import_rows
        where import_id = ${importId} and ${sql.ref(col)} is not null
        group by import_id, ${sql.ref(col)} having count(*) > 1`.execute(trx);
      byRule[rule] = Number(r.numAffectedRows ?? 0);
      await sql`
        insert into contact_import_group_members (group_id, import_id, contact_id)
        select g.id, g.import_id, r.contact_id from contact_import_groups g
        join contact_import_rows r on r.import_id = g.import_id and r.${sql.ref(col)} = g.match_key
        where g.import_id = ${importId} and g.rule = ${rule}`.execute(trx);
    });
  }

  // name + company: blocks in key order, one chunk at a time; a block cut by the chunk's end is read again whole.
  const uf = new UnionFind();
  const edgeScore = new Map<string, number>();
  let skippedBlocks = 0;
  type BlockRow = { block: string; contact_id: string; name_key: string | null; company_key: string | null };
  const compare = (members: BlockRow[]) => {
    if (members.length > settings.maxBlock) {
      skippedBlocks++;
      return;
    }
    for (let x = 0; x < members.length; x++)
      for (let y = x + 1; y < members.length; y++) {
        const a = members[x]!;
        const b = members[y]!;
        if (!a.name_key || !a.company_key || !b.name_key || !b.company_key) continue;
        const score = nameCompanyScore(
          { name: a.name_key, company: a.company_key },
          { name: b.name_key, company: b.company_key },
          settings,
        );
        if (score === null) continue;
        uf.union(a.contact_id, b.contact_id);
        const k = a.contact_id < b.contact_id ? `${a.contact_id} ${b.contact_id}` : `${b.contact_id} ${a.contact_id}`;
        edgeScore.set(k, score);
      }
  };
  const read = (where: { after?: string; block?: string }, limit: number) =>
    db
      .selectFrom('contact_import_blocks as b')
      .innerJoin('contact_import_rows as r', (j) =>
        j.onRef('r.import_id', '=', 'b.import_id').onRef('r.contact_id', '=', 'b.contact_id'),
      )
      .select(['b.block', 'b.contact_id', 'r.name_key', 'r.company_key'])
      .where('b.import_id', '=', importId)
      .$if(where.after !== undefined, (q) => q.where('b.block', '>', where.after!))
      .$if(where.block !== undefined, (q) => q.where('b.block', '=', where.block!))
      .orderBy('b.block')
      .orderBy('b.contact_id')
      .limit(limit)
      .execute();
  let after = '';
  for (;;) {
    signal?.throwIfAborted();
    const rows = await read({ after }, settings.chunk);
    if (!rows.length) break;
    const full = rows.length === settings.chunk;
    const lastBlock = rows.at(-1)!.block;
    if (full && rows[0]!.block === lastBlock) {
      // One block fills the whole chunk: read it alone (up to one row over maxBlock, enough to know it is too big).
      compare(settings.chunk > settings.maxBlock ? rows : await read({ block: lastBlock }, settings.maxBlock + 1));
      after = lastBlock;
      continue;
    }
    let i = 0;
    while (i < rows.length) {
      const block = rows[i]!.block;
      let j = i;
      while (j < rows.length && rows[j]!.block === block) j++;
      if (full && block === lastBlock) break; // possibly incomplete: the next chunk starts with it
      compare(rows.slice(i, j));
      after = block;
      i = j;
    }
  }
  // Groups: the matched contacts by their root; the score is the weakest link that joined the group.
  const groups = new Map<string, { members: string[]; score: number }>();
  for (const id of uf.parent.keys()) {
    const root = uf.find(id);
    const g = groups.get(root) ?? { members: [], score: 1 };
    g.members.push(id);
    groups.set(root, g);
  }
  for (const [k, score] of edgeScore) {
    const g = groups.get(uf.find(k.slice(0, k.indexOf(' '))))!;
    g.score = Math.min(g.score, score);
  }
  const list = [...groups.values()];
  for (let s = 0; s < list.length; s += 500) {
    const part = list.slice(s, s + 500);
    await db.transaction().execute(async (trx) => {
      const ids = await trx
        .insertInto('contact_import_groups')
        .values(
          part.map((g) => ({
            import_id: importId,
            rule: 'name_company' as const,
            match_key: g.members.sort()[0]!,
            score: g.score,
            size: g.members.length,
          })),
        )
        .returning(['id', 'match_key'])
        .execute();
      const idOf = new Map(ids.map((r) => [r.match_key, r.id]));
      await trx
        .insertInto('contact_import_group_members')
        .values(
          part.flatMap((g) =>
            g.members.map((m) => ({ group_id: idOf.get(g.members[0]!)!, import_id: importId, contact_id: m })),
          ),
        )
        .execute();
    });
  }
  byRule.name_company = list.length;
  return { groups: byRule.email + byRule.phone + byRule.name_company, byRule, skippedBlocks };
}
