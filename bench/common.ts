import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import pino from 'pino';
import { generateKeySpec } from '../src/infra/crypto/aes.js';
import type { Config } from '../src/infra/config/index.js';
import { VARS } from '../src/infra/config/schema.js';
import { createLogger, type Logger } from '../src/infra/log/logger.js';
import { SCOPES } from '../test/provider/harness.js';
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

/**
 * A fresh, migrated store: PGlite on disk in a temp dir (in the thread `embeddedThread` says; default where it ships),
 * or a throw-away PostgreSQL schema.
 */
export async function benchStore(
  kind: 'pglite' | 'postgres',
  opts: { embeddedThread?: 'worker' | 'process' | 'main' } = {},
): Promise<BenchStore> {
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
  const handle = await openDatabase({
    schema,
    dataDir: dir,
    ...(opts.embeddedThread ? { embeddedThread: opts.embeddedThread } : {}),
  });
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

/** p-th percentile (nearest rank) of `xs`; NaN when empty. */
export function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** What a benchmark emulator prints when ready (bench/emulator-world.ts). */
export interface BenchWorld {
  baseUrl: string;
  keys: { ed25519PublicKeyPem: string; rsaPublicKeyPem: string };
  clientId: string;
  clientSecret: string;
  conversationProviderId: string;
  locationIds: string[];
}

/** Starts a benchmark emulator (bench/*-emulator.ts) in its own process; `call` talks to its control endpoints. */
export async function startEmulator(args: string[]): Promise<{
  child: ChildProcess;
  world: BenchWorld;
  call: <T>(path: string, body?: unknown, method?: string) => Promise<T>;
}> {
  const { child, ready: world } = await startChild<BenchWorld>(args);
  const call = async <T>(path: string, body?: unknown, method = 'POST'): Promise<T> => {
    const r = await fetch(
      `${world.baseUrl}${path}`,
      body === undefined ? {} : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
    if (!r.ok) throw new Error(`emulator ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  return { child, world, call };
}

/** LOG_LEVEL's shipped default, read from the configuration schema (tests run silent; benchmarks must not). */
export const SHIPPED_LOG_LEVEL = String(VARS.find((v) => v.name === 'LOG_LEVEL')!.schema.parse(undefined));

/**
 * The bridge variables every in-process benchmark bridge needs to talk to the emulator's world, at the shipped log
 * level (pass a logger from fileLogger() so its lines go to a file).
 */
export function bridgeEnv(world: BenchWorld): Record<string, string> {
  return {
    LOG_LEVEL: SHIPPED_LOG_LEVEL,
    SANDBOX: 'false',
    GHL_CLIENT_ID: world.clientId,
    GHL_CLIENT_SECRET: world.clientSecret,
    GHL_API_BASE: world.baseUrl,
    GHL_MARKETPLACE_BASE: world.baseUrl,
    GHL_SCOPES: SCOPES,
    GHL_CONVERSATION_PROVIDER_ID: world.conversationProviderId,
    PUBLIC_URL: 'http://bridge.test',
    TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
    GHL_RECONCILE_INTERVAL_MIN: '0',
  };
}

/**
 * A logger for an in-process benchmark bridge at its configured level (the shipped default unless a benchmark says
 * otherwise), writing to `file` as a log shipper would read it: benchmarks pay for logging as users do, without
 * mixing log lines into the figures they print.
 */
export function fileLogger(file: string): (config: Config) => Logger {
  return (config) =>
    createLogger({
      level: config.LOG_LEVEL,
      secrets: config.secretValues,
      destination: pino.destination({ dest: file, append: true, sync: true }),
    });
}
