import type { ColumnType, Generated } from 'kysely';

type Json<T> = ColumnType<T, string, string>;

export type TriggerState = 'pending' | 'delivered' | 'dead';
export type OpState = 'pending' | 'done' | 'failed';
export type DealStatus = 'open' | 'won' | 'lost' | 'abandoned';

export interface TriggerConfigsTable {
  location_id: string;
  name: string;
  url_enc: string;
  url_masked: string;
  key_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface TriggerRequestsTable {
  id: Generated<number>;
  location_id: string;
  name: string;
  idempotency_key: string;
  body_hash: string;
  payload: Json<unknown>;
  state: Generated<TriggerState>;
  attempts: Generated<number>;
  last_status: number | null;
  last_error: string | null;
  received_at: Generated<Date>;
  delivered_at: Date | null;
  updated_at: Generated<Date>;
}

export interface CachedStage {
  id: string;
  name: string;
}
export interface CachedPipeline {
  id: string;
  name: string;
  stages: CachedStage[];
}

export interface PipelineCacheTable {
  location_id: string;
  pipelines: Json<CachedPipeline[]>;
  fetched_at: Generated<Date>;
}

export interface OpportunityMapTable {
  location_id: string;
  external_id: string;
  opportunity_id: string;
  contact_id: string | null;
  name: string | null;
  pipeline_id: string | null;
  pipeline_stage_id: string | null;
  status: string | null;
  monetary_value: number | null;
  assigned_to: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** What an accepted upsert asks for, names already resolved to GHL ids at the edge. */
export interface UpsertRequest {
  contact: { id?: string | undefined; email?: string | undefined; phone?: string | undefined };
  name?: string | undefined;
  pipelineId?: string | undefined;
  pipelineStageId?: string | undefined;
  status?: DealStatus | undefined;
  monetaryValue?: number | undefined;
  assignedTo?: string | undefined;
}
export interface StatusRequest {
  status: DealStatus;
  lostReasonId?: string | undefined;
}

export interface OpportunityOpsTable {
  id: Generated<number>;
  location_id: string;
  external_id: string;
  kind: 'upsert' | 'status';
  request: Json<UpsertRequest | StatusRequest>;
  state: Generated<OpState>;
  create_started_at: Date | null;
  opportunity_id: string | null;
  error: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    trigger_configs: TriggerConfigsTable;
    trigger_requests: TriggerRequestsTable;
    pipeline_cache: PipelineCacheTable;
    opportunity_map: OpportunityMapTable;
    opportunity_ops: OpportunityOpsTable;
  }
}
