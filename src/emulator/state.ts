/** In-memory GHL state. Plain maps; every mutation goes through services so webhooks fire consistently. */

export type UserType = 'Location' | 'Company';
export type ProviderType = 'SMS' | 'Email';
export type MessageStatus =
  | 'pending'
  | 'sent'
  | 'delivered'
  | 'read'
  | 'failed'
  | 'undelivered'
  | 'connected'
  | 'opened'
  | 'scheduled'
  | 'clicked'
  | 'opt_out'
  | 'queued';

export interface Agency {
  id: string;
  name: string;
  isWhitelabelCompany: boolean;
  whitelabelDomain?: string;
}

/** Duplicate-contact setting of a location (GHL: Settings › Business Profile › Allow Duplicate Contact). */
export interface DuplicateSettings {
  allowDuplicateContact: boolean;
  /** Match priority used by upsert/duplicate search when duplicates are disallowed. */
  priority: ('email' | 'phone')[];
}

export interface Location {
  id: string;
  companyId: string;
  name: string;
  phone?: string;
  email?: string;
  address: string;
  timezone: string;
  /** ISO 3166 alpha-2 country of the sub-account (GET /locations/{id} `country`); optional. */
  country?: string;
  duplicates: DuplicateSettings;
  /** Default provider per channel: appId of a default (non-custom) conversation provider app, if selected. */
  defaultProvider: Partial<Record<ProviderType, string>>;
  createdAt: number;
}

export interface User {
  id: string;
  companyId: string;
  locationIds: string[];
  name: string;
  email: string;
  role: 'admin' | 'user';
  type: 'agency' | 'account';
}

export interface ConversationProviderConfig {
  id: string;
  type: ProviderType;
  /** true = "extra" provider (ticked "Is this a Custom Conversation Provider"); false = default provider. */
  isCustom: boolean;
  alias?: string;
}

export type Distribution = 'location' | 'agency' | 'both';

export interface App {
  appId: string;
  clientId: string;
  clientSecret: string;
  name: string;
  redirectUris: string[];
  scopes: string[];
  webhookUrl?: string;
  /** Event types the app subscribed to (undefined = all it has scopes for). */
  webhookEvents?: string[];
  providerDeliveryUrl?: string;
  conversationProvider?: ConversationProviderConfig;
  /** Who installs it: target sub-account ('location'), agency ('agency') or both (bulk-capable sub-account app). */
  distribution: Distribution;
  versionId: string;
  planId?: string;
}

/** One app installed on one location (location- or agency-initiated) or on a company (agency-level). */
export interface Installation {
  appId: string;
  companyId: string;
  locationId?: string;
  installedAt: number;
  userId: string;
  isBulk: boolean;
}

export interface AuthCode {
  code: string;
  clientId: string;
  userType: UserType;
  companyId: string;
  locationId?: string;
  userId: string;
  redirectUri: string;
  expiresAt: number;
  isBulk: boolean;
  approvedLocations: string[];
  used: boolean;
}

export interface AccessToken {
  token: string;
  appId: string;
  clientId: string;
  userType: UserType;
  companyId: string;
  locationId?: string;
  userId: string;
  scopes: string[];
  expiresAt: number;
  revoked: boolean;
  /** How it was minted, for listing/debugging. */
  origin: 'authorization_code' | 'refresh_token' | 'locationToken';
}

export interface RefreshToken {
  token: string;
  id: string;
  appId: string;
  clientId: string;
  userType: UserType;
  companyId: string;
  locationId?: string;
  userId: string;
  scopes: string[];
  isBulk: boolean;
  approvedLocations: string[];
  expiresAt: number;
  used: boolean;
  revoked: boolean;
}

export interface ContactCustomFieldValue {
  id: string;
  value: unknown;
}

export interface Contact {
  id: string;
  locationId: string;
  firstName?: string | null;
  lastName?: string | null;
  name?: string | null;
  email?: string | null;
  phone?: string | null;
  gender?: string;
  address1?: string | null;
  city?: string | null;
  state?: string | null;
  postalCode?: string;
  website?: string | null;
  timezone?: string | null;
  dnd: boolean;
  dndSettings?: Record<string, unknown>;
  inboundDndSettings?: Record<string, unknown>;
  tags: string[];
  customFields: ContactCustomFieldValue[];
  source?: string | null;
  dateOfBirth?: string | null;
  country?: string;
  companyName?: string | null;
  assignedTo?: string | null;
  type: 'lead' | 'customer';
  dateAdded: number;
  dateUpdated: number;
}

export interface Conversation {
  id: string;
  locationId: string;
  contactId: string;
  dateAdded: number;
  dateUpdated: number;
  lastMessageDate: number;
  lastMessageBody: string;
  lastMessageType?: string;
  lastMessageDirection?: 'inbound' | 'outbound';
  unreadCount: number;
  starred: boolean;
  inbox: boolean;
  deleted: boolean;
  assignedTo?: string;
  /** Numeric conversation type (1 phone, 2 email). */
  type: number;
}

export interface StatusChange {
  status: MessageStatus;
  at: number;
  by: string;
  error?: { code: string; type: string; message: string };
}

export interface Message {
  id: string;
  locationId: string;
  contactId: string;
  conversationId: string;
  /** Numeric GHL type (1 call, 2 SMS, 3 email …). */
  type: number;
  messageType: string;
  /** Channel as the API names it (SMS, Email, Call, Custom …). */
  channel: string;
  direction: 'inbound' | 'outbound';
  status: MessageStatus;
  body?: string;
  html?: string;
  subject?: string;
  emailFrom?: string;
  emailTo?: string[];
  emailCc?: string[];
  emailBcc?: string[];
  emailMessageId?: string;
  altId?: string;
  contentType: string;
  attachments: string[];
  source: 'workflow' | 'bulk_actions' | 'campaign' | 'api' | 'app';
  userId?: string;
  conversationProviderId?: string;
  /** appId of the provider app that owns delivery (only that app may update status). */
  providerAppId?: string;
  call?: { to?: string; from?: string; status?: string };
  /** Seconds (meta.callDuration); set on call messages. */
  callDuration?: number;
  dateAdded: number;
  createdAtMs: number;
  statusHistory: StatusChange[];
  error?: { code: string; type: string; message: string };
}

export interface CustomField {
  id: string;
  locationId: string;
  name: string;
  fieldKey: string;
  placeholder: string;
  dataType: string;
  position: number;
  picklistOptions: string[];
  model: 'contact' | 'opportunity';
  dateAdded: number;
}

export interface DeliveryAttempt {
  at: number;
  status?: number;
  error?: string;
  responseBody?: string;
  durationMs: number;
}

export interface Delivery {
  id: string;
  webhookId?: string;
  kind: 'app' | 'provider';
  appId: string;
  url: string;
  eventType: string;
  locationId?: string;
  companyId?: string;
  payload: Record<string, unknown>;
  body: string;
  headers: Record<string, string>;
  attempts: DeliveryAttempt[];
  state: 'scheduled' | 'in_flight' | 'retry_scheduled' | 'delivered' | 'failed' | 'dropped';
  createdAt: number;
}

/** One answered call to the GHL surface (not /_emulator), for tests and benchmarks that count API calls. */
export interface ApiCall {
  method: string;
  path: string;
  status: number;
  at: number;
}

/** A Map that counts its changes of membership, so an index over it (a sorted view) knows when to rebuild. */
export class CountingMap<K, V> extends Map<K, V> {
  #version = 0;
  get version(): number {
    return this.#version;
  }
  override set(k: K, v: V): this {
    this.#version++;
    return super.set(k, v);
  }
  override delete(k: K): boolean {
    this.#version++;
    return super.delete(k);
  }
  override clear(): void {
    this.#version++;
    super.clear();
  }
}

export class State {
  /** Answered API calls, oldest first (capped at 100,000). */
  apiCalls: ApiCall[] = [];
  agencies = new Map<string, Agency>();
  locations = new Map<string, Location>();
  users = new Map<string, User>();
  apps = new Map<string, App>();
  /** clientId → appId */
  appsByClientId = new Map<string, string>();
  installations: Installation[] = [];
  /** appId|companyId → options of agency-level (bulk) installs */
  companyInstallOptions = new Map<string, { installToFutureLocations: boolean; approveAllLocations: boolean }>();
  codes = new Map<string, AuthCode>();
  accessTokens = new Map<string, AccessToken>();
  refreshTokens = new Map<string, RefreshToken>();
  contacts = new CountingMap<string, Contact>();
  conversations = new Map<string, Conversation>();
  messages = new Map<string, Message>();
  customFields = new Map<string, CustomField>();
  deliveries: Delivery[] = [];

  appByClientId(clientId: string): App | undefined {
    const appId = this.appsByClientId.get(clientId);
    return appId === undefined ? undefined : this.apps.get(appId);
  }

  /** Location-level installation of an app (directly or via an agency bulk install). */
  locationInstall(appId: string, locationId: string): Installation | undefined {
    return this.installations.find((i) => i.appId === appId && i.locationId === locationId);
  }

  companyInstall(appId: string, companyId: string): Installation | undefined {
    return this.installations.find((i) => i.appId === appId && i.companyId === companyId && i.locationId === undefined);
  }

  /** Apps installed on a location (location-level install records). */
  appsInstalledOn(locationId: string): App[] {
    const out: App[] = [];
    for (const i of this.installations) {
      if (i.locationId !== locationId) continue;
      const app = this.apps.get(i.appId);
      if (app && !out.includes(app)) out.push(app);
    }
    return out;
  }

  conversationOf(locationId: string, contactId: string): Conversation | undefined {
    for (const c of this.conversations.values()) {
      if (c.locationId === locationId && c.contactId === contactId && !c.deleted) return c;
    }
    return undefined;
  }
}
