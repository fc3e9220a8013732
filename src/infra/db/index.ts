import { randomBytes } from 'node:crypto';
import { access, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import { ScopedPostgresDialect } from './introspector.js';
import pg from 'pg';
import { acquireDataDirLock } from './lockfile.js';
import { enablePreparedStatements } from './prepared.js';
import { Mutex, PGliteDialect } from './pglite-dialect.js';
import { PGliteThread, type PGliteLike } from './pglite-thread.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type StoreKind = 'postgres' | 'pglite';

export interface DatabaseHandle {
  db: Db;
  /**
   * Handle for the job queue's own bookkeeping (claim, complete, heartbeat). On PostgreSQL it is
   * a small pool with synchronous_commit=off: losing such a commit in a server crash only makes
   * a job run again, which at-least-once delivery allows, and it saves a WAL flush per batch.
   * Enqueue and all business writes stay fully durable on `db`.
   */
  queueDb: Db;
  /**
   * Handle for latency-critical writes (webhook intake: GHL gives up on a slow answer and does not
   * retry it). PGlite: same session, served before queued background statements. PostgreSQL: its
   * own small pool, so busy workers cannot exhaust the connections it needs.
   */
  urgentDb: Db;
  kind: StoreKind;
  schema: string;
  /** Cheap reachability check for /readyz. */
  ping(): Promise<void>;
  /** LISTEN on a channel; returns the unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /** State of the LISTEN connection (PostgreSQL reconnects it after an outage; PGlite's never drops). */
  readonly listenStatus: ListenStatus;
  close(): Promise<void>;
}

export interface ListenStatus {
  /** A LISTEN is in place now. */
  listening: boolean;
  /** Times the LISTEN connection was re-established after it dropped. */
  reconnects: number;
  /** Why the last connection or attempt failed (null while listening). */
  lastError: string | null;
  connectedOnce: boolean;
}

const newListenStatus = (): ListenStatus => ({
  listening: false,
  reconnects: 0,
  lastError: null,
  connectedOnce: false,
});

export interface OpenDatabaseOptions {
  /** postgres:// URL; when absent the embedded PGlite store is used. */
  url?: string | undefined;
  schema: string;
  /** PGlite data directory; 'memory://' keeps it in memory (tests). */
  dataDir?: string;
  poolMax?: number;
  /** Send the statements marked with `prepared` as named prepared statements (PostgreSQL; default true). */
  preparedStatements?: boolean;
  /**
   * Where the embedded store runs: `worker` (default), a worker thread, so its statements never block HTTP;
   * `process`, a child process (messages over IPC); or `main`, the bridge's own thread (compared in bench:embedded).
   */
  embeddedThread?: 'worker' | 'process' | 'main';
}

// int8 (counts, bigserial ids) as JS numbers on both stores: ids stay far below 2^53.
const INT8 = 20;
const NUMERIC = 1700;

export async function openDatabase(opts: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const schema = opts.schema;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);

  if (opts.url) {
    const types = {
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === INT8 || oid === NUMERIC ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format),
    };
    // Create the schema once with a plain client, then every pooled connection starts in it.
    const boot = new pg.Client({ connectionString: opts.url });
    boot.on('error', () => {});
    await boot.connect();
    try {
      await boot.query(`create schema if not exists "${schema}"`);
    } catch (e) {
      // Two replicas racing on CREATE SCHEMA IF NOT EXISTS can still collide on the catalog.
      if ((e as { code?: string }).code !== '23505' && (e as { code?: string }).code !== '42P06') throw e;
    } finally {
      await boot.end();
    }
    // Idle connections are kept a minute: closing them after pg's default 10 s made uneven load reconnect (and
    // re-prepare statements) over and over.
    const newDb = (max: number, settings = '') => {
      const pool = new pg.Pool({
        connectionString: opts.url,
        max,
        idleTimeoutMillis: 60_000,
        types,
        options: `-c search_path="${schema}"${settings}`,
      });
      guardPool(pool);
      if (opts.preparedStatements !== false) enablePreparedStatements(pool);
      return new Kysely<Database>({ dialect: new ScopedPostgresDialect({ pool }) });
    };
    const db = newDb(opts.poolMax ?? 10);
    const queueDb = newDb(4, ' -c synchronous_commit=off');
    const urgentDb = newDb(4);
    const listenStatus = newListenStatus();
    return {
      db,
      queueDb,
      urgentDb,
      kind: 'postgres',
      schema,
      ping: async () => {
        await sql`select 1`.execute(db);
      },
      listen: (channel, onNotify) => listenPostgres(opts.url!, channel, onNotify, listenStatus),
      listenStatus,
      close: async () => {
        await urgentDb.destroy();
        await queueDb.destroy();
        await db.destroy();
      },
    };
  }

  const dataDir = opts.dataDir ?? './data';
  const inMemory = dataDir.startsWith('memory://');
  const release = inMemory ? () => {} : acquireDataDirLock(resolve(dataDir));
  let pglite: PGliteLike;
  try {
    const where = opts.embeddedThread ?? 'worker';
    if (where !== 'main') {
      const thread = new PGliteThread({
        host: where,
        ...(inMemory
          ? { loadDataDirFile: await pristineClusterFile() }
          : { dataDir: join(resolve(dataDir), 'pgdata') }),
      });
      try {
        await thread.waitReady;
      } catch (e) {
        await thread.close();
        throw e;
      }
      pglite = thread;
    } else {
      pglite = await PGlite.create({
        ...(inMemory ? { loadDataDir: await pristineClusterBlob() } : { dataDir: join(resolve(dataDir), 'pgdata') }),
        parsers: { [INT8]: (v: string) => Number(v), [NUMERIC]: (v: string) => Number(v) },
      });
    }
    await pglite.exec(`create schema if not exists "${schema}"; set search_path to "${schema}";`);
  } catch (e) {
    release();
    throw e;
  }
  const mutex = new Mutex();
  const listenStatus = newListenStatus();
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite, mutex) });
  const urgentDb = new Kysely<Database>({ dialect: new PGliteDialect(pglite, mutex, true) });
  let closed = false;
  return {
    db,
    queueDb: db,
    urgentDb,
    kind: 'pglite',
    schema,
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    // PGlite is one session: LISTEN goes through the dialect's mutex so it never lands inside
    // another caller's transaction.
    listen: async (channel, onNotify) => {
      const unlisten = await db.connection().execute(() => pglite.listen(quoteIdent(channel), onNotify));
      listenStatus.listening = true;
      return async () => {
        listenStatus.listening = false;
        if (!closed) await db.connection().execute(() => unlisten());
      };
    },
    listenStatus,
    close: async () => {
      if (closed) return;
      closed = true;
      await db.destroy();
      await pglite.close();
      release();
    },
  };
}

/**
 * A freshly initialised, empty PGlite cluster as a tarball file. Every in-memory store (tests, benchmarks,
 * throw-away sandboxes) starts from it: creating a cluster runs initdb, about 1.8 s of CPU, while unpacking the
 * tarball takes about 0.4 s. It is made once per machine and PGlite version, in the OS temp directory (written to a
 * temporary name and renamed, so concurrent processes never read half a file). On-disk stores run initdb once, when
 * their directory is new.
 */
let pristine: Promise<string> | undefined;
function pristineClusterFile(): Promise<string> {
  pristine ??= (async () => {
    const pkg = join(dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')), '..', 'package.json');
    const { version } = JSON.parse(await readFile(pkg, 'utf8')) as { version: string };
    const file = join(tmpdir(), `ghl-bridge-pglite-${version}.tar`);
    try {
      await access(file);
      return file;
    } catch {
      // not made yet: make it
    }
    const template = await PGlite.create();
    let tarball: Blob;
    try {
      tarball = await template.dumpDataDir('none');
    } finally {
      await template.close();
    }
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, Buffer.from(await tarball.arrayBuffer()));
      await rename(tmp, file);
    } finally {
      await rm(tmp, { force: true });
    }
    return file;
  })();
  pristine.catch(() => {
    pristine = undefined;
  });
  return pristine;
}

/** The pristine cluster in memory, read once per process (in-thread stores load it; a worker reads the file). */
let pristineBlob: Promise<Blob> | undefined;
function pristineClusterBlob(): Promise<Blob> {
  pristineBlob ??= pristineClusterFile().then(async (f) => new Blob([await readFile(f)]));
  pristineBlob.catch(() => {
    pristineBlob = undefined;
  });
  return pristineBlob;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A dedicated connection for LISTEN (pooled connections cannot hold it). If it drops (server restart, failover, a
 * killed backend, an outage), it is re-established with exponential backoff (0.5 s doubling to 30 s, jittered) until
 * it succeeds, however long that takes; workers keep polling meanwhile, so nothing is missed for long. Its state is
 * in `status` (a metric and /readyz detail).
 */
async function listenPostgres(
  url: string,
  channel: string,
  onNotify: (payload: string) => void,
  status: ListenStatus,
): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let failures = 0;
  const schedule = (err: unknown) => {
    status.listening = false;
    status.lastError = err instanceof Error ? err.message : String(err);
    if (stopped || retry) return;
    const ms = Math.min(30_000, 500 * 2 ** Math.min(failures++, 6)) * (0.5 + Math.random() / 2);
    retry = setTimeout(() => {
      retry = undefined;
      connect().catch(schedule);
    }, ms);
    retry.unref();
  };
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url });
    let dead = false;
    const drop = (err: unknown) => {
      if (dead) return;
      dead = true;
      if (client === c) client = undefined;
      void c.end().catch(() => {});
      schedule(err);
    };
    c.on('notification', (n) => {
      if (n.channel === channel) onNotify(n.payload ?? '');
    });
    c.on('error', drop);
    c.on('end', () => drop(new Error('LISTEN connection closed')));
    try {
      await c.connect();
      await c.query(`listen ${quoteIdent(channel)}`);
    } catch (e) {
      dead = true;
      void c.end().catch(() => {});
      throw e;
    }
    if (dead) throw new Error('LISTEN connection closed while connecting');
    if (stopped) {
      dead = true;
      await c.end().catch(() => {});
      return;
    }
    if (status.connectedOnce) status.reconnects++;
    status.connectedOnce = true;
    status.listening = true;
    status.lastError = null;
    failures = 0;
    client = c;
    onNotify(''); // catch up on anything enqueued while we were not listening
  };
  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    status.listening = false;
    const c = client;
    client = undefined;
    await c?.end().catch(() => {});
  };
}

/**
 * A connection that dies (server restart, failover, network cut) makes its pg client emit
 * 'error'. pg-pool listens only while a client is idle and Kysely not at all while it is checked
 * out, so an unlistened 'error' would crash the process. The failing query still rejects, and
 * pg-pool discards the dead client when it is released.
 */
function guardPool(pool: pg.Pool): void {
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
}
