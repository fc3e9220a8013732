import type { CallSummary } from '../calls/index.js';
import type { ColumnType, Generated } from 'kysely';

type Json<T> = ColumnType<T, string, string>;
export type ImportStatus = 'running' | 'deduplicating' | 'enriching' | 'completed' | 'failed' | 'cancelled';
export type RowDecision = 'pending' | 'approved' | 'rejected' | 'merged';
export type DuplicateRule = 'email' | 'phone' | 'name_company';

/** One import of a location's contacts; `cursor` is the searchAfter of the last committed page. */
export interface ContactImportsTable {
  id: string;
  location_id: string;
  status: ImportStatus;
  /** Read each staged contact's call history after duplicate detection (status `enriching`). */
  enrich_calls: Generated<boolean>;
  rows_enriched: Generated<number>;
  page_size: number;
  cursor: Json<Array<string | number>> | null;
  pages_done: Generated<number>;
  rows_done: Generated<number>;
  total: number | null;
  duplicate_groups: Generated<number>;
  /** Every page is staged (the walk is over; duplicates may still be running). */
  walked: Generated<boolean>;
  /** When the last page was staged (the end of the walk's rate). */
  walked_at: Date | null;
  error: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  /** The current run (start or resume): rate and ETA are measured over it. */
  run_started_at: Generated<Date>;
  run_rows_start: Generated<number>;
  finished_at: Date | null;
}

/** A staged contact: the GHL record as read, its mapped logical fields, the match keys, the review decision. */
export interface ContactImportRowsTable {
  import_id: string;
  contact_id: string;
  page: number;
  original: Json<Record<string, unknown>>;
  logical: Json<Record<string, unknown>>;
  email_norm: string | null;
  phone_e164: string | null;
  name_key: string | null;
  company_key: string | null;
  /** The external id the bridge's contact map holds for this GHL contact (when the contacts module is loaded). */
  mapped_external_id: string | null;
  /** The contact's calls (enrichCalls), newest first; null until read. */
  calls: Json<CallSummary[]> | null;
  calls_checked: Generated<boolean>;
  decision: Generated<RowDecision>;
  merge_into: string | null;
  decided_at: Date | null;
}

export interface ContactImportBlocksTable {
  import_id: string;
  block: string;
  contact_id: string;
}

export interface ContactImportGroupsTable {
  id: Generated<number>;
  import_id: string;
  rule: DuplicateRule;
  match_key: string;
  score: number;
  size: number;
}

export interface ContactImportGroupMembersTable {
  group_id: number;
  import_id: string;
  contact_id: string;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    contact_imports: ContactImportsTable;
    contact_import_rows: ContactImportRowsTable;
    contact_import_blocks: ContactImportBlocksTable;
    contact_import_groups: ContactImportGroupsTable;
    contact_import_group_members: ContactImportGroupMembersTable;
  }
}
