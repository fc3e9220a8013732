import type { Generated, Selectable } from 'kysely';

export type InstallationStatus = 'active' | 'reauth_required' | 'uninstalled';
export type TokenSource = 'oauth' | 'company' | 'pit';

export interface InstallationsTable {
  id: string;
  kind: 'location' | 'company';
  company_id: string;
  location_id: string | null;
  user_type: 'Location' | 'Company';
  token_source: TokenSource;
  scopes: Generated<string>;
  user_id: string | null;
  plan_id: string | null;
  is_bulk: Generated<boolean>;
  install_to_future: Generated<boolean>;
  status: Generated<InstallationStatus>;
  status_reason: string | null;
  access_token_enc: string | null;
  refresh_token_enc: string | null;
  key_id: string | null;
  expires_at: Date | null;
  refreshed_at: Date | null;
  refresh_count: Generated<number>;
  installed_at: Generated<Date>;
  updated_at: Generated<Date>;
  uninstalled_at: Date | null;
}

export type InstallationRow = Selectable<InstallationsTable>;

export interface OAuthStatesTable {
  state: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: Generated<Date>;
}

declare module '../../infra/db/schema.js' {
  interface Database {
    ghl_installations: InstallationsTable;
    ghl_oauth_states: OAuthStatesTable;
  }
}
