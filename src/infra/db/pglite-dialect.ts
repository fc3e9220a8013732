import {
  CompiledQuery,
  PostgresAdapter,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import { SchemaScopedIntrospector } from './introspector.js';
import type { PGliteLike } from './pglite-thread.js';

/**
 * A small Kysely dialect for PGlite. PGlite is a single connection, so a FIFO mutex hands it to
 * one Kysely "connection" at a time: a transaction owns it from BEGIN to COMMIT, and a query
 * outside a transaction owns it for that statement. (kysely-pglite interleaves statements of
 * concurrent callers on the one session, which is how it loses writes outside transactions.)
 */
export class Mutex {
  #locked = false;
  #waiters: Array<() => void> = [];
  #urgent: Array<() => void> = [];
  /** `urgent` waiters go before every normal waiter (FIFO among themselves). */
  async lock(urgent = false): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    await new Promise<void>((resolve) => (urgent ? this.#urgent : this.#waiters).push(resolve));
  }
  /**
   * PGlite executes on the main thread. Handing the lock over through setImmediate lets the event
   * loop reach its I/O phase between statements; a direct (microtask) hand-over lets a queue of
   * statements run back to back while incoming HTTP requests wait (seen: webhook answers > 10 s
   * during a burst).
   */
  unlock(): void {
    if (!this.#urgent.length && !this.#waiters.length) {
      this.#locked = false;
      return;
    }
    setImmediate(() => {
      const next = this.#urgent.shift() ?? this.#waiters.shift();
      if (next) next();
      else this.#locked = false;
    });
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(private readonly pg: PGliteLike) {}
  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    const res = await this.pg.query<R>(q.sql, q.parameters as unknown[]);
    const kind = q.query.kind;
    const isWrite =
      kind === 'InsertQueryNode' ||
      kind === 'UpdateQueryNode' ||
      kind === 'DeleteQueryNode' ||
      kind === 'MergeQueryNode';
    return {
      rows: res.rows,
      ...(isWrite || res.affectedRows ? { numAffectedRows: BigInt(res.affectedRows ?? 0) } : {}),
    };
  }
  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported on the embedded PGlite store');
  }
}

class PGliteDriver implements Driver {
  readonly #conn: PGliteConnection;
  constructor(
    private readonly pg: PGliteLike,
    private readonly mutex: Mutex,
    private readonly urgent: boolean,
  ) {
    this.#conn = new PGliteConnection(pg);
  }
  async init(): Promise<void> {
    await this.pg.waitReady;
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    await this.mutex.lock(this.urgent);
    return this.#conn;
  }
  async beginTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('begin'));
  }
  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('commit'));
  }
  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('rollback'));
  }
  async releaseConnection(): Promise<void> {
    this.mutex.unlock();
  }
  async destroy(): Promise<void> {
    // The owner closes the PGlite instance (it also owns the data-dir lock).
  }
}

/**
 * Several dialects may share one PGlite and one mutex; an `urgent` one (the webhook intake, whose
 * answer decides whether GHL keeps an event) is served before queued background work.
 */
export class PGliteDialect implements Dialect {
  constructor(
    private readonly pg: PGliteLike,
    private readonly mutex: Mutex = new Mutex(),
    private readonly urgent = false,
  ) {}
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pg, this.mutex, this.urgent);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SchemaScopedIntrospector(db);
  }
}
