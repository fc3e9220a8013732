import type { ColumnType, Generated } from 'kysely';

type Json<T> = ColumnType<T, string, string>;
type JsonNull<T> = ColumnType<T | null, string | null, string | null>;

export type PushOutcome = 'created' | 'updated' | 'unchanged' | 'conflict' | 'failed';
export type SyncStatus = 'success' | 'partial' | 'failed';

/** One logical field of a location and the GHL custom field it maps to (the mapping cache). */
export interface ContactsFieldsTable {
  location_id: string;
  logical: string;
  /** Declared GHL data type (TEXT, NUMERICAL, SINGLE_OPTIONS, …): used when the field is created. */
  data_type: string;
  /** Declared match key (`contact.<key>`) and name; null = derived from the logical name. */
  field_key: string | null;
  field_name: string | null;
  /** Declared options (for option fields that the bridge creates). */
  options: JsonNull<string[]>;
  /** The GHL field, as last read from GET /locations/{id}/customFields. */
  ghl_field_id: string | null;
  ghl_field_key: string | null;
  ghl_name: string | null;
  ghl_data_type: string | null;
  ghl_options: JsonNull<string[]>;
  /** Set by an operator (field id given explicitly): discovery keeps it while the field exists. */
  pinned: Generated<boolean>;
  refreshed_at: Date | null;
  updated_at: Generated<Date>;
}

/** Per location: settings learned from GHL, the mapping's freshness and the sync status record. */
export interface ContactsLocationsTable {
  location_id: string;
  /** Operator's region for national phone numbers; else the location's GHL country; else CONTACTS_DEFAULT_REGION. */
  region: string | null;
  ghl_country: string | null;
  /** GHL's "Allow Duplicate Contact" as GET /locations/{id} last said (null = unknown). */
  allow_duplicates: boolean | null;
  /** Create missing GHL fields (declared type) on refresh. */
  create_missing: Generated<boolean>;
  mapping_refreshed_at: Date | null;
  mapping_error: string | null;
  last_sync_at: Date | null;
  last_status: SyncStatus | null;
  last_error: string | null;
  last_batch_id: string | null;
  /** The last finished batch's counts by outcome. */
  last_counts: JsonNull<Record<PushOutcome, number>>;
  /** Every record since the first push, by outcome. */
  totals: Json<Record<PushOutcome, number>>;
  updated_at: Generated<Date>;
}

/** External id → GHL contact, per location, with what was last pushed (content hash, tags). */
export interface ContactsMapTable {
  location_id: string;
  external_id: string;
  contact_id: string;
  /** Hash of the standard and custom fields last written; null = write again on the next push. */
  fields_hash: string | null;
  /** Tags the bridge last pushed (the base of the next diff). */
  tags: Json<string[]>;
  email: string | null;
  phone: string | null;
  /** Written apart from the hash: PUT /contacts/{id} has no companyName (spec UpdateContactDto), upsert does. */
  company_name: string | null;
  updated_at: Generated<Date>;
}

export interface ContactsBatchesTable {
  id: string;
  location_id: string;
  total: number;
  done: Generated<number>;
  created: Generated<number>;
  updated: Generated<number>;
  unchanged: Generated<number>;
  conflict: Generated<number>;
  failed: Generated<number>;
  created_at: Generated<Date>;
  completed_at: Date | null;
}

/** The normalised record as stored at the edge (custom fields by logical name). */
export interface PushRecord {
  externalId: string;
  firstName?: string;
  lastName?: string;
  name?: string;
  email?: string;
  phone?: string;
  companyName?: string;
  source?: string;
  tags: string[];
  customFields: Record<string, string | number | boolean | string[] | null>;
}

export interface ContactsBatchRecordsTable {
  batch_id: string;
  idx: number;
  location_id: string;
  external_id: string;
  record: JsonNull<PushRecord>;
  outcome: PushOutcome | null;
  contact_id: string | null;
  reason: string | null;
  done_at: Date | null;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    contacts_fields: ContactsFieldsTable;
    contacts_locations: ContactsLocationsTable;
    contacts_map: ContactsMapTable;
    contacts_batches: ContactsBatchesTable;
    contacts_batch_records: ContactsBatchRecordsTable;
  }
}
