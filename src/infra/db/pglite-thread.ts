import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';

/**
 * The part of PGlite the embedded store uses, so the dialect runs the same on an instance in this thread or on
 * one in a worker thread (`PGliteThread`).
 */
export interface PGliteLike {
  readonly waitReady: Promise<void>;
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>;
  exec(sql: string): Promise<unknown>;
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface PGliteThreadOptions {
  /** `worker`: a worker thread (default); `process`: a child process, messages over IPC. */
  host?: 'worker' | 'process';
  /** On-disk data directory (absent: in memory). */
  dataDir?: string;
  /** A tarball of a data directory to start an in-memory instance from (see `pristineCluster`). */
  loadDataDirFile?: string;
}

/**
 * The worker's program, as plain JavaScript (it runs unbundled and untranspiled, in dev, tests and dist alike). It
 * owns one PGlite instance and runs what the main thread sends, one message at a time, in order; the main thread's
 * mutex decides who may send (a transaction holds it from BEGIN to COMMIT), exactly as with an in-thread instance.
 */
const WORKER_PRELUDE = `
const { parentPort, workerData } = require('node:worker_threads');
`;
const PROCESS_PRELUDE = `
const parentPort = { postMessage: (m) => process.send(m), on: (e, f) => process.on(e, f) };
const workerData = JSON.parse(process.argv[1]);
process.on('disconnect', () => process.exit(0));
`;
const WORKER_SOURCE = `
const { readFile } = require('node:fs/promises');
(async () => {
  const { PGlite } = await import(workerData.pgliteUrl);
  const parsers = { 20: (v) => Number(v), 1700: (v) => Number(v) };
  const opts = { parsers };
  if (workerData.dataDir) opts.dataDir = workerData.dataDir;
  if (workerData.loadDataDirFile) opts.loadDataDir = new Blob([await readFile(workerData.loadDataDirFile)]);
  let pg;
  try {
    pg = await PGlite.create(opts);
  } catch (e) {
    parentPort.postMessage({ op: 'ready', error: { message: String(e && e.message || e) } });
    return;
  }
  const unlisteners = new Map();
  parentPort.postMessage({ op: 'ready' });
  const errorOf = (e) => {
    const out = { message: String(e && e.message || e) };
    for (const k of ['code', 'detail', 'hint', 'constraint', 'table', 'column', 'schema', 'severity', 'position', 'where', 'dataType'])
      if (e && e[k] !== undefined) out[k] = e[k];
    return out;
  };
  const chain = { p: Promise.resolve() };
  parentPort.on('message', (m) => {
    chain.p = chain.p.then(async () => {
      try {
        let result;
        if (m.op === 'query') {
          const r = await pg.query(m.sql, m.params);
          result = { rows: r.rows, affectedRows: r.affectedRows };
        } else if (m.op === 'exec') {
          await pg.exec(m.sql);
        } else if (m.op === 'listen') {
          const un = await pg.listen(m.channel, (payload) => parentPort.postMessage({ op: 'notify', sub: m.sub, payload }));
          unlisteners.set(m.sub, un);
        } else if (m.op === 'unlisten') {
          const un = unlisteners.get(m.sub);
          unlisteners.delete(m.sub);
          if (un) await un();
        } else if (m.op === 'close') {
          await pg.close();
        }
        parentPort.postMessage({ id: m.id, result });
      } catch (e) {
        try {
          parentPort.postMessage({ id: m.id, error: errorOf(e) });
        } catch (e2) {
          parentPort.postMessage({ id: m.id, error: { message: 'the embedded store could not send its answer: ' + String(e2 && e2.message || e2) } });
        }
      }
    }).catch(() => {});
  });
})();
`;

/** What the store needs of its host: a worker thread or a child process. */
interface Host {
  post(m: unknown): void;
  on(event: 'message', f: (m: any) => void): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  off(event: 'message', f: (m: any) => void): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  onFailure(f: (e: Error) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<void>;
}

function workerHost(data: Record<string, unknown>): Host {
  const w = new Worker(WORKER_PRELUDE + WORKER_SOURCE, { eval: true, workerData: data });
  return {
    post: (m) => w.postMessage(m),
    on: (e, f) => w.on(e, f),
    off: (e, f) => w.off(e, f),
    onFailure: (f) => {
      w.on('error', f);
      w.on('exit', (code) => f(new Error(`the embedded store's thread exited (code ${code})`)));
    },
    ref: () => w.ref(),
    unref: () => w.unref(),
    terminate: async () => {
      w.ref();
      await w.terminate();
    },
  };
}

function processHost(data: Record<string, unknown>): Host {
  const c: ChildProcess = spawn(process.execPath, ['-e', PROCESS_PRELUDE + WORKER_SOURCE, JSON.stringify(data)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  return {
    post: (m) => c.send(m as never),
    on: (e, f) => c.on(e, f),
    off: (e, f) => c.off(e, f),
    onFailure: (f) => {
      c.on('error', f);
      c.on('exit', (code, signal) => f(new Error(`the embedded store's process exited (${signal ?? `code ${code}`})`)));
    },
    ref: () => {
      c.ref();
      c.channel?.ref();
    },
    unref: () => {
      c.unref();
      c.channel?.unref();
    },
    terminate: async () => {
      // Referenced again while it stops: an idle (unreferenced) child would let the process end before it exits.
      c.ref();
      if (c.exitCode === null && c.signalCode === null) c.kill();
      await exited;
    },
  };
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * PGlite in a worker thread. PGlite runs PostgreSQL compiled to WebAssembly synchronously: in the bridge's own
 * thread every statement blocks HTTP and timers while it runs (measured: a relay at 40 % of PostgreSQL's rate with
 * the event loop 95 % busy). Here the statements run in the worker and the main thread only posts them and takes
 * the rows back. The worker is referenced only while a request is in flight, so an idle store never keeps a process
 * alive, and a busy one is never cut off.
 */
export class PGliteThread implements PGliteLike {
  readonly waitReady: Promise<void>;
  readonly #worker: Host;
  readonly #pending = new Map<number, Pending>();
  readonly #subs = new Map<number, (payload: string) => void>();
  #seq = 0;
  #inFlight = 0;
  #dead: Error | undefined;

  constructor(opts: PGliteThreadOptions = {}) {
    const pgliteUrl = pathToFileURL(createRequire(import.meta.url).resolve('@electric-sql/pglite')).href.replace(
      /index\.cjs$/,
      'index.js',
    );
    const data = { pgliteUrl, dataDir: opts.dataDir, loadDataDirFile: opts.loadDataDirFile };
    this.#worker = opts.host === 'process' ? processHost(data) : workerHost(data);
    this.#ref();
    this.waitReady = new Promise<void>((resolve, reject) => {
      const onReady = (m: { op?: string; error?: { message: string } }) => {
        if (m.op !== 'ready') return;
        this.#worker.off('message', onReady);
        this.#unref();
        if (m.error) reject(new Error(`the embedded store could not start: ${m.error.message}`));
        else resolve();
      };
      this.#worker.on('message', onReady);
    });
    this.waitReady.catch(() => {});
    this.#worker.on(
      'message',
      (m: {
        id?: number;
        op?: string;
        sub?: number;
        payload?: string;
        result?: unknown;
        error?: Record<string, unknown>;
      }) => {
        if (m.op === 'notify') {
          this.#subs.get(m.sub!)?.(m.payload!);
          return;
        }
        if (m.id === undefined) return;
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        this.#unref();
        if (m.error) p.reject(Object.assign(new Error(String(m.error.message)), m.error));
        else p.resolve(m.result);
      },
    );
    const fail = (e: Error) => {
      this.#dead ??= e;
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    this.#worker.onFailure(fail);
  }

  #ref(): void {
    if (this.#inFlight++ === 0) this.#worker.ref();
  }
  #unref(): void {
    if (--this.#inFlight === 0) this.#worker.unref();
  }

  #call<T>(msg: Record<string, unknown>): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = ++this.#seq;
    this.#ref();
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.post({ ...msg, id });
    });
  }

  async query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }> {
    await this.waitReady;
    return this.#call({ op: 'query', sql, params: params ?? [] });
  }

  async exec(sql: string): Promise<unknown> {
    await this.waitReady;
    return this.#call({ op: 'exec', sql });
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    await this.waitReady;
    const sub = ++this.#seq;
    this.#subs.set(sub, onNotify);
    await this.#call({ op: 'listen', channel, sub });
    return async () => {
      this.#subs.delete(sub);
      if (!this.#dead) await this.#call({ op: 'unlisten', sub });
    };
  }

  async close(): Promise<void> {
    if (this.#dead) return;
    try {
      await this.waitReady;
      await this.#call({ op: 'close' });
    } catch {
      // a store that never started has nothing to close
    }
    await this.#worker.terminate();
  }
}
