import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../src/infra/db/index.js';
import { migrateToLatest } from '../src/infra/db/migrations/index.js';
import { allMigrations } from '../src/modules.js';

export const PG_URL =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface BenchStore {
  name: 'PGlite' | 'PostgreSQL';
  handle: DatabaseHandle;
  dispose(): Promise<void>;
}

/** A fresh, migrated store: PGlite on disk in a temp dir, or a throw-away PostgreSQL schema. */
export async function benchStore(kind: 'pglite' | 'postgres'): Promise<BenchStore> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  if (kind === 'postgres') {
    const handle = await openDatabase({ url: PG_URL, schema, poolMax: 12 });
    await migrateToLatest(handle.db, schema, await allMigrations());
    return {
      name: 'PostgreSQL',
      handle,
      async dispose() {
        await handle.close();
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`drop schema if exists "${schema}" cascade`);
        await c.end();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'ghl-bridge-bench-'));
  const handle = await openDatabase({ schema, dataDir: dir });
  await migrateToLatest(handle.db, schema, await allMigrations());
  return {
    name: 'PGlite',
    handle,
    async dispose() {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function postgresAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [
    headers,
    ...rows.map((r) =>
      r.map((c) => (typeof c === 'number' ? c.toLocaleString('en-US', { maximumFractionDigits: 1 }) : c)),
    ),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: Array<string | number>) => '| ' + r.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ') + ' |';
  return [
    line(cells[0]!),
    '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|',
    ...cells.slice(1).map(line),
  ].join('\n');
}

/**
 * Runs a TypeScript file in its own Node process (a server, the emulator) so it does not share the measured process's
 * CPU; resolves with the first line it prints on stdout, parsed as JSON (its address, ids, keys).
 */
export function startChild<T>(nodeArgs: string[], env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; ready: T }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...nodeArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(env ? { env } : {}),
  });
  return new Promise((resolve, reject) => {
    // The ready line is the first JSON line that is not a pino log line (a child logging at info prints those first);
    // the interface keeps draining stdout afterwards, as a log shipper would.
    const lines = createInterface({ input: child.stdout! });
    const onLine = (l: string) => {
      let v: unknown;
      try {
        v = JSON.parse(l);
      } catch {
        return;
      }
      if (typeof v === 'object' && v !== null && 'level' in v && 'msg' in v) return;
      lines.off('line', onLine);
      resolve({ child, ready: v as T });
    };
    lines.on('line', onLine);
    child.once('exit', (code) => reject(new Error(`${nodeArgs.join(' ')} exited (${code})`)));
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
