import { createHash } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type pg from 'pg';

/**
 * Server-side prepared statements for the few hot statements of the queue and webhook intake.
 *
 * Kysely sends every statement unnamed, so PostgreSQL parses and plans it on every execution; for
 * the claim, completion and intake statements planning cost more than running them (measured with
 * pg_stat_statements during bench:relay: ~0.65 ms planning vs ~0.15 ms execution per claim). A
 * statement built with `prepared` starts with a marker comment; on PostgreSQL connections with
 * preparation enabled it is sent as a named statement (name = hash of its text), which the server
 * parses once per connection and plans from its plan cache. Only statements whose text does not
 * grow with their input may be marked: each distinct text stays prepared for the connection's life.
 * PGlite, and connections with preparation off, run the same text as a plain statement.
 */
export const PREPARED_MARK = '/*prepared*/ ';

export function prepared<T>(fragment: RawBuilder<unknown>): RawBuilder<T> {
  return sql<T>`${sql.raw(PREPARED_MARK)}${fragment}`;
}

const names = new Map<string, string>();
function nameOf(text: string): string {
  let n = names.get(text);
  if (!n) {
    n = `ghlb_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    names.set(text, n);
  }
  return n;
}

/** Makes a pool's clients send marked statements as named prepared statements. */
export function enablePreparedStatements(pool: pg.Pool): void {
  pool.on('connect', (client) => {
    // pg's query() is overloaded; the wrapper forwards every call unchanged, so it is bound and installed untyped.
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    const wrapped = (...args: unknown[]) => {
      const [text, values] = args;
      if (
        args.length <= 2 &&
        typeof text === 'string' &&
        text.startsWith(PREPARED_MARK) &&
        (values === undefined || Array.isArray(values))
      ) {
        return query({ name: nameOf(text), text, values });
      }
      return query(...args);
    };
    Object.defineProperty(client, 'query', { value: wrapped, writable: true, configurable: true });
  });
}
