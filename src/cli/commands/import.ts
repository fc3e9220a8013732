import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { loadDotEnv } from '../../infra/config/index.js';

/**
 * `ghl-bridge import …`: contact imports of a running bridge, through its /v1 API (the bridge's workers do the work,
 * and an embedded store is held by the running bridge, so the CLI does not open it). The bridge is
 * `--bridge-url` / BRIDGE_URL (default http://127.0.0.1:$PORT), the key `--api-key` / GHL_BRIDGE_API_KEY, else
 * ADMIN_API_KEY (accepted on every /v1 route).
 */
const ID = /^[A-Za-z0-9_-]{1,64}$/;

interface Conn {
  bridgeUrl?: string;
  apiKey?: string;
}

interface Progress {
  id: string;
  locationId: string;
  status: string;
  pageSize: number;
  pagesDone: number;
  rowsDone: number;
  rowsEnriched: number;
  total: number | null;
  percent: number | null;
  rowsPerSecond: number;
  etaSeconds: number | null;
  duplicateGroups: number;
  error: string | null;
  decisions?: Record<string, number>;
}

function usage(msg: string): never {
  console.error(msg);
  process.exit(2);
}

function checkId(what: string, v: string): string {
  if (!ID.test(v)) usage(`invalid ${what}: expected an id (1–64 of A-Z a-z 0-9 _ -), got "${v}"`);
  return v;
}

function conn(o: Conn): { base: string; key: string | undefined } {
  loadDotEnv();
  const base = (o.bridgeUrl ?? process.env.BRIDGE_URL ?? `http://127.0.0.1:${process.env.PORT ?? '3000'}`).replace(
    /\/+$/,
    '',
  );
  if (!/^https?:\/\//.test(base)) usage(`invalid --bridge-url: expected an http(s) URL, got "${base}"`);
  return { base, key: o.apiKey ?? process.env.GHL_BRIDGE_API_KEY ?? process.env.ADMIN_API_KEY };
}

async function request(o: Conn, method: string, path: string, body?: unknown): Promise<Response> {
  const { base, key } = conn(o);
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    return await fetch(`${base}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    console.error(`error: the bridge at ${base} is not reachable (${(e as Error).message}); is it running?`);
    process.exit(1);
  }
}

async function call<T>(o: Conn, method: string, path: string, body?: unknown): Promise<T> {
  const r = await request(o, method, path, body);
  const text = await r.text();
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    j = text;
  }
  if (r.status >= 300) {
    const e = j as { message?: string; details?: Array<{ path: string; message: string }> };
    const details = e.details?.map((d) => `  ${d.path}: ${d.message}`).join('\n');
    console.error(`error: ${r.status} ${e.message ?? text}${details ? `\n${details}` : ''}`);
    process.exit(1);
  }
  return j as T;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const dur = (s: number) =>
  s >= 3600
    ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${s % 60}s`
      : `${s}s`;

/** One line: `[██████░░░░]  45.0%  2,250/5,000 rows · 5 pages · 812 rows/s · ETA 3s · running`. */
export function progressLine(p: Progress, width = 30): string {
  const frac = p.percent === null ? 0 : p.percent / 100;
  const full = Math.round(frac * width);
  const bar = `[${'█'.repeat(full)}${'░'.repeat(width - full)}]`;
  const pct = p.percent === null ? '   ?  ' : `${p.percent.toFixed(1).padStart(5)}%`;
  const rows = `${fmt(p.rowsDone)}/${p.total === null ? '?' : fmt(p.total)} rows`;
  const eta = p.etaSeconds === null ? 'ETA ?' : `ETA ${dur(p.etaSeconds)}`;
  const tail =
    p.status === 'completed'
      ? `${fmt(p.duplicateGroups)} duplicate groups · completed`
      : p.status === 'enriching'
        ? `enriching calls ${fmt(p.rowsEnriched)}/${fmt(p.rowsDone)}`
        : p.status;
  return `${bar} ${pct}  ${rows} · ${fmt(p.pagesDone)} pages · ${fmt(Math.round(p.rowsPerSecond))} rows/s · ${eta} · ${tail}${p.error ? ` · ${p.error}` : ''}`;
}

/** Polls until the import ends, drawing the progress bar (one line per change when not a terminal). */
async function follow(o: Conn, loc: string, id: string, intervalMs: number): Promise<never> {
  const tty = process.stderr.isTTY === true;
  let last = '';
  for (;;) {
    const p = await call<Progress>(o, 'GET', `/v1/locations/${loc}/imports/${id}`);
    const line = progressLine(p);
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (p.status !== 'running' && p.status !== 'deduplicating' && p.status !== 'enriching') {
      if (tty) process.stderr.write('\n');
      console.log(JSON.stringify(p));
      process.exit(p.status === 'completed' ? 0 : 1);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const withConn = (c: Command) =>
  c
    .option('--bridge-url <url>', 'the running bridge (default BRIDGE_URL or http://127.0.0.1:$PORT)')
    .option('--api-key <key>', 'a /v1 API key for the location (default GHL_BRIDGE_API_KEY, else ADMIN_API_KEY)');

function interval(v: string | undefined): number {
  const n = Number(v ?? '500');
  if (!Number.isInteger(n) || n < 50 || n > 60_000) usage(`invalid --interval: expected 50–60000 ms, got "${v}"`);
  return n;
}

export function registerImportCommand(program: Command): void {
  const cmd = program
    .command('import')
    .description(
      'contact imports (GHL → staging) of a running bridge: start, progress, cancel, resume, review, export',
    );
  withConn(
    cmd
      .command('start <locationId>')
      .description("start importing the location's contacts; --follow draws a progress bar until it ends")
      .option('--page-size <n>', 'contacts per search page (1–500; default IMPORT_PAGE_SIZE)')
      .option('--enrich-calls', "also read each contact's call history (two GHL calls per contact)")
      .option('--follow', 'show progress until the import ends (exit 0 when completed, 1 otherwise)')
      .option('--interval <ms>', 'progress poll interval with --follow', '500'),
  ).action(
    async (
      loc: string,
      o: Conn & { pageSize?: string; enrichCalls?: boolean; follow?: boolean; interval?: string },
    ) => {
      checkId('locationId', loc);
      const body: { pageSize?: number; enrichCalls?: boolean } = o.enrichCalls ? { enrichCalls: true } : {};
      if (o.pageSize !== undefined) {
        const n = Number(o.pageSize);
        if (!Number.isInteger(n) || n < 1 || n > 500) usage(`invalid --page-size: expected 1–500, got "${o.pageSize}"`);
        body.pageSize = n;
      }
      const ms = interval(o.interval);
      const p = await call<Progress>(o, 'POST', `/v1/locations/${loc}/imports`, body);
      console.error(`import ${p.id} started for location ${loc}`);
      if (o.follow) await follow(o, loc, p.id, ms);
      console.log(JSON.stringify(p));
    },
  );
  withConn(
    cmd
      .command('status <locationId> [importId]')
      .description('progress of an import (default: the latest of the location)')
      .option('--follow', 'show progress until the import ends')
      .option('--interval <ms>', 'progress poll interval with --follow', '500'),
  ).action(async (loc: string, id: string | undefined, o: Conn & { follow?: boolean; interval?: string }) => {
    checkId('locationId', loc);
    const ms = interval(o.interval);
    let importId = id === undefined ? undefined : checkId('importId', id);
    if (!importId) {
      const list = await call<{ imports: Progress[] }>(o, 'GET', `/v1/locations/${loc}/imports?limit=1`);
      importId = list.imports[0]?.id;
      if (!importId) {
        console.error(`no import for location ${loc}`);
        process.exit(1);
      }
    }
    if (o.follow) await follow(o, loc, importId, ms);
    const p = await call<Progress>(o, 'GET', `/v1/locations/${loc}/imports/${importId}`);
    console.error(progressLine(p));
    console.log(JSON.stringify(p));
  });
  withConn(cmd.command('cancel <locationId> <importId>').description('cancel an import in progress')).action(
    async (loc: string, id: string, o: Conn) => {
      const p = await call<Progress>(
        o,
        'POST',
        `/v1/locations/${checkId('locationId', loc)}/imports/${checkId('importId', id)}/cancel`,
      );
      console.error(`import ${p.id} cancelled after ${fmt(p.rowsDone)} rows (${fmt(p.pagesDone)} pages)`);
      console.log(JSON.stringify(p));
    },
  );
  withConn(
    cmd
      .command('delete <locationId> <importId>')
      .description('delete an import that is not in progress, with its staged rows'),
  ).action(async (loc: string, id: string, o: Conn) => {
    const r = await request(
      o,
      'DELETE',
      `/v1/locations/${checkId('locationId', loc)}/imports/${checkId('importId', id)}`,
    );
    if (r.status !== 204) {
      console.error(`error: ${r.status} ${await r.text()}`);
      process.exit(1);
    }
    console.error(`import ${id} deleted`);
  });
  withConn(
    cmd
      .command('resume <locationId> <importId>')
      .description('resume a cancelled or failed import from its last checkpoint')
      .option('--follow', 'show progress until the import ends')
      .option('--interval <ms>', 'progress poll interval with --follow', '500'),
  ).action(async (loc: string, id: string, o: Conn & { follow?: boolean; interval?: string }) => {
    const ms = interval(o.interval);
    const p = await call<Progress>(
      o,
      'POST',
      `/v1/locations/${checkId('locationId', loc)}/imports/${checkId('importId', id)}/resume`,
    );
    console.error(`import ${p.id} resumed at page ${fmt(p.pagesDone)}`);
    if (o.follow) await follow(o, loc, p.id, ms);
    console.log(JSON.stringify(p));
  });
  withConn(
    cmd
      .command('rows <locationId> <importId>')
      .description('staged rows (JSON, one page; --after for the next)')
      .option('--decision <d>', 'pending, approved, rejected or merged')
      .option('--after <contactId>', 'nextAfter of the previous page')
      .option('--limit <n>', 'rows per page (1–500)', '100'),
  ).action(async (loc: string, id: string, o: Conn & { decision?: string; after?: string; limit: string }) => {
    const q = new URLSearchParams({ limit: o.limit });
    if (o.decision) q.set('decision', o.decision);
    if (o.after) q.set('after', o.after);
    console.log(
      JSON.stringify(
        await call(
          o,
          'GET',
          `/v1/locations/${checkId('locationId', loc)}/imports/${checkId('importId', id)}/rows?${q}`,
        ),
        null,
        2,
      ),
    );
  });
  withConn(
    cmd
      .command('duplicates <locationId> <importId>')
      .description('duplicate groups with their rule, score and members (JSON, one page)')
      .option('--rule <r>', 'email, phone or name_company')
      .option('--after <groupId>', 'nextAfter of the previous page')
      .option('--limit <n>', 'groups per page (1–200)', '50'),
  ).action(async (loc: string, id: string, o: Conn & { rule?: string; after?: string; limit: string }) => {
    const q = new URLSearchParams({ limit: o.limit });
    if (o.rule) q.set('rule', o.rule);
    if (o.after) q.set('after', o.after);
    console.log(
      JSON.stringify(
        await call(
          o,
          'GET',
          `/v1/locations/${checkId('locationId', loc)}/imports/${checkId('importId', id)}/duplicates?${q}`,
        ),
        null,
        2,
      ),
    );
  });
  withConn(
    cmd
      .command('decide <locationId> <importId> <decision> <contactId...>')
      .description('approve, reject, merge (--into) or reset staged contacts')
      .option('--into <contactId>', 'merge: the staged contact they are merged into'),
  ).action(async (loc: string, id: string, decision: string, contacts: string[], o: Conn & { into?: string }) => {
    if (!['approve', 'reject', 'merge', 'reset'].includes(decision))
      usage(`invalid decision: expected approve, reject, merge or reset, got "${decision}"`);
    if (decision === 'merge' && !o.into) usage('merge needs --into <contactId>');
    const r = await call<{
      results: Array<{ contactId: string; ok: boolean; error?: { path: string; message: string } }>;
      applied: number;
      refused: number;
    }>(o, 'POST', `/v1/locations/${checkId('locationId', loc)}/imports/${checkId('importId', id)}/decisions`, {
      decisions: contacts.map((c) => ({ contactId: c, decision, ...(o.into ? { into: o.into } : {}) })),
    });
    for (const x of r.results.filter((y) => !y.ok))
      console.error(`${x.contactId}: ${x.error?.path}: ${x.error?.message}`);
    console.log(JSON.stringify({ applied: r.applied, refused: r.refused }));
    process.exit(r.refused ? 1 : 0);
  });
  withConn(
    cmd
      .command('export <locationId> <importId>')
      .description('the approved rows to stdout, streamed (JSONL or CSV)')
      .option('--format <f>', 'jsonl or csv', 'jsonl'),
  ).action(async (loc: string, id: string, o: Conn & { format: string }) => {
    if (o.format !== 'jsonl' && o.format !== 'csv') usage(`invalid --format: expected jsonl or csv, got "${o.format}"`);
    const r = await request(
      o,
      'GET',
      `/v1/locations/${checkId('locationId', loc)}/imports/${checkId('importId', id)}/export?format=${o.format}`,
    );
    if (r.status !== 200 || !r.body) {
      console.error(`error: ${r.status} ${await r.text()}`);
      process.exit(1);
    }
    await pipeline(Readable.fromWeb(r.body as WebReadableStream<Uint8Array>), process.stdout);
  });
}
