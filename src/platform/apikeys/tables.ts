import type { ColumnType, Generated } from 'kysely';

type Json<T> = ColumnType<T, string, string>;

/** One API key of the public /v1 API: only its SHA-256 is kept; the plaintext is shown once at creation. */
export interface ApiKeysTable {
  id: string;
  name: string;
  /** The first characters of the key (`gbk_` + 8), to recognise it in listings. */
  prefix: string;
  key_hash: string;
  /** The GHL locations the key may act for. */
  location_ids: Json<string[]>;
  created_at: Generated<Date>;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    api_keys: ApiKeysTable;
  }
}
