import { sql, type Kysely, type Migration } from 'kysely';
import type { Db } from '../infra/db/index.js';
import type { SessionRevocations } from '../infra/http/admin-auth.js';

/** Console sessions ended by log-out, until they would have expired anyway. */
export interface ConsoleRevokedSessionsTable {
  sid: string;
  expires_at: Date;
}

declare module '../infra/db/schema.js' {
  interface Database {
    console_revoked_sessions: ConsoleRevokedSessionsTable;
  }
}

export const consoleMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create table console_revoked_sessions (sid text primary key, expires_at timestamptz not null)`.execute(
      db,
    );
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table console_revoked_sessions`.execute(db);
  },
};

/** Log-outs in the store: every replica, and the bridge after a restart, refuses a logged-out session. */
export class StoredRevocations implements SessionRevocations {
  constructor(private readonly db: Db) {}

  async isRevoked(sid: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('console_revoked_sessions')
      .select('sid')
      .where('sid', '=', sid)
      .executeTakeFirst();
    return row !== undefined;
  }

  async revoke(sid: string, expiresAt: Date): Promise<void> {
    await this.db
      .insertInto('console_revoked_sessions')
      .values({ sid, expires_at: expiresAt })
      .onConflict((oc) => oc.column('sid').doNothing())
      .execute();
  }

  /** Rows of sessions past their expiry (the signature check refuses those by itself). */
  async prune(): Promise<number> {
    const r = await this.db
      .deleteFrom('console_revoked_sessions')
      .where('expires_at', '<', sql<Date>`now()`)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
