import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/infra/config/index.js';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/index.js';
import { migrateToLatest } from '../../src/infra/db/migrations/index.js';
import { allMigrations } from '../../src/modules.js';
import { createBridge, type Bridge, type BridgeModule } from '../../src/app.js';
import { createLogger, type Logger } from '../../src/infra/log/logger.js';

/**
 * Which store the suite runs on: TEST_STORE=postgres uses the real server at TEST_DATABASE_URL
 * (default 127.0.0.1:5432/test), each test in a fresh schema; otherwise embedded PGlite.
 */
export const STORE: 'postgres' | 'pglite' = process.env.TEST_STORE === 'postgres' ? 'postgres' : 'pglite';
export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Where in-process test bridges run the embedded store. The shipped default is a worker thread (`worker`); the suite
 * runs its in-process bridges on `main` (about 150 µs less per statement, a third off the suite's time), while every
 * spawned `ghl-bridge` process (crash, CLI and start-up tests) and test/foundation/embedded-thread.test.ts run the
 * default. TEST_EMBEDDED_THREAD=worker runs the whole suite on the worker thread. Outside vitest (the benchmarks use
 * these helpers) the shipped default applies.
 */
export const EMBEDDED_THREAD = (process.env.TEST_EMBEDDED_THREAD ?? (process.env.VITEST ? 'main' : 'worker')) as
  'worker' | 'process' | 'main';

export function freshSchema(): string {
  return `t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A throw-away directory for an on-disk PGlite store. */
export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'ghl-bridge-test-'));
}

export interface TestStore extends DatabaseHandle {
  /** Env vars that point another process (child) at the same store. */
  env: Record<string, string>;
}

/** Opens a migrated store. PGlite is on disk only when `onDisk` (needed for child processes). */
export async function openTestStore(opts: { onDisk?: boolean; migrate?: boolean } = {}): Promise<TestStore> {
  const schema = freshSchema();
  if (STORE === 'postgres') {
    const h = await openDatabase({ url: PG_URL, schema, poolMax: 12 });
    if (opts.migrate !== false) await migrateToLatest(h.db, schema, await allMigrations());
    const close = h.close;
    return {
      ...h,
      env: { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema },
      close: async () => {
        await close();
        await dropSchema(schema);
      },
    };
  }
  const dataDir = opts.onDisk ? tempDataDir() : 'memory://';
  const h = await openDatabase({ schema, dataDir, embeddedThread: EMBEDDED_THREAD });
  if (opts.migrate !== false) await migrateToLatest(h.db, schema, await allMigrations());
  return { ...h, env: { DATA_DIR: dataDir, DATABASE_SCHEMA: schema } };
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await c.end();
  }
}

/** A valid configuration for tests: sandbox credentials off unless given, quiet logs. */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    JOB_POLL_MS: '50',
    SHUTDOWN_TIMEOUT_MS: '2000',
    EMBEDDED_STORE_THREAD: EMBEDDED_THREAD,
    ...(STORE === 'postgres'
      ? { DATABASE_URL: PG_URL, DATABASE_SCHEMA: freshSchema() }
      : { DATABASE_SCHEMA: freshSchema() }),
    ...env,
  });
}

export interface TestBridge extends Bridge {
  url: string;
}

/**
 * Starts a real bridge (HTTP on 127.0.0.1:0, workers running) on a fresh store. On PostgreSQL
 * the schema is dropped on close.
 */
export async function startTestBridge(
  opts: {
    modules?: BridgeModule[];
    env?: Record<string, string | undefined>;
    config?: Config;
    dataDir?: string;
    log?: (config: Config) => Logger;
  } = {},
): Promise<TestBridge> {
  const config = opts.config ?? testConfig(opts.env);
  const bridge = await createBridge(config, {
    log: opts.log ? opts.log(config) : createLogger({ level: config.LOG_LEVEL, secrets: config.secretValues }),
    modules: opts.modules ?? [],
    dataDir: opts.dataDir ?? (config.DATABASE_URL ? undefined : 'memory://') ?? 'memory://',
  });
  const url = await bridge.listen(0);
  const close = bridge.close.bind(bridge);
  return Object.assign(bridge, {
    url,
    close: async () => {
      await close();
      if (config.DATABASE_URL) await dropSchema(config.DATABASE_SCHEMA);
    },
  });
}

/** Waits until `check` returns a truthy value, polling the real state (not a sleep-based sync). */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

export const quietLog = createLogger({ level: 'silent' });

/** A logger at `level` whose JSON lines are kept, for asserting on what was (not) logged. */
export function captureLog(level = 'info'): {
  log: Logger;
  lines: Array<{ level: number; msg?: string; [k: string]: unknown }>;
  errors: () => Array<{ level: number; msg?: string }>;
} {
  const lines: Array<{ level: number; msg?: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of String(chunk).split('\n'))
        if (l.trim()) lines.push(JSON.parse(l) as { level: number; msg?: string });
      cb();
    },
  });
  const log = createLogger({ level, destination });
  return { log, lines, errors: () => lines.filter((l) => l.level >= 50) };
}
