import { sql, type Selectable } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import {
  CHANNEL_SECRET_FIELDS,
  channelConfigSchema,
  ChannelConfigError,
  createChannel,
  maskChannelConfig,
  type ChannelAdapter,
  type ChannelConfig,
  type ChannelConfigInput,
  type ChannelDeps,
} from '../channels/index.js';
import { describeZodError } from '../channels/inbound-util.js';
import { decrypt, encrypt, type KeyRing } from '../../infra/crypto/aes.js';
import type { ProviderChannelsTable } from './tables.js';
import './tables.js';

/** Per-location options stored next to the channel config. */
export interface ChannelOptions {
  /** Region for national phone numbers (ISO 3166 alpha-2), default US. */
  defaultRegion?: string;
  /** Overrides GHL_CONVERSATION_PROVIDER_ID for this location. */
  conversationProviderId?: string | null;
  /** 'Custom' when the app is an *extra* (custom) Email provider: inbound e-mail must be added as type Custom (docs/ghl-behaviour.md#provider-types). */
  emailInboundType?: 'Email' | 'Custom';
  enabled?: boolean;
}

export interface StoredChannel {
  locationId: string;
  kind: ChannelConfig['kind'];
  config: ChannelConfig;
  defaultRegion: string;
  conversationProviderId: string | null;
  emailInboundType: 'Email' | 'Custom';
  enabled: boolean;
  keyId: string | null;
  updatedAt: Date;
}

/** What the admin API / CLI show: secrets masked. */
export type ChannelView = Omit<StoredChannel, 'config'> & { config: Record<string, unknown> };

const aad = (locationId: string, field: string) => `provider_channels:${locationId}:${field}`;

export class ChannelValidationError extends Error {
  override name = 'ChannelValidationError';
}

const REGION = /^[A-Z]{2}$/;

/** Validates a config (defaults applied), throwing ChannelValidationError naming the bad fields (never values). */
export function parseChannelConfig(input: unknown): ChannelConfig {
  const r = channelConfigSchema.safeParse(input);
  if (!r.success) throw new ChannelValidationError(`invalid channel config: ${describeZodError(r.error)}`);
  return r.data;
}

/**
 * Stores (insert or replace) the channel of a location. Secret fields are encrypted with the primary key of the
 * ring, bound to the location and field (AAD), so a value copied into another row does not decrypt.
 */
export async function configureChannel(
  db: Db,
  ring: KeyRing,
  locationId: string,
  input: ChannelConfigInput | ChannelConfig,
  opts: ChannelOptions = {},
): Promise<ChannelView> {
  if (!locationId || !/^[A-Za-z0-9_-]{1,128}$/.test(locationId))
    throw new ChannelValidationError('locationId must be 1–128 characters of [A-Za-z0-9_-]');
  const cfg = parseChannelConfig(input);
  const region = (opts.defaultRegion ?? 'US').toUpperCase();
  if (!REGION.test(region))
    throw new ChannelValidationError('defaultRegion must be a two-letter ISO country code, e.g. US or PH');
  const stored: Record<string, unknown> = { ...cfg };
  for (const f of CHANNEL_SECRET_FIELDS[cfg.kind] as readonly string[]) {
    const v = stored[f];
    if (typeof v === 'string') stored[f] = encrypt(ring, v, aad(locationId, f));
  }
  const row = {
    location_id: locationId,
    kind: cfg.kind,
    config: sql<string>`${JSON.stringify(stored)}::jsonb`,
    key_id: ring.primaryId,
    default_region: region,
    conversation_provider_id: opts.conversationProviderId ?? null,
    email_inbound_type: opts.emailInboundType ?? 'Email',
    enabled: opts.enabled ?? true,
  };
  await db
    .insertInto('provider_channels')
    .values(row)
    .onConflict((oc) => oc.column('location_id').doUpdateSet({ ...row, updated_at: sql`now()` }))
    .execute();
  const v = await getChannelView(db, ring, locationId);
  return v!;
}

type Row = Selectable<ProviderChannelsTable>;

function open(ring: KeyRing, r: Row): StoredChannel {
  const cfg: Record<string, unknown> = {
    ...(typeof r.config === 'string' ? (JSON.parse(r.config) as Record<string, unknown>) : r.config),
  };
  for (const f of CHANNEL_SECRET_FIELDS[r.kind] as readonly string[]) {
    const v = cfg[f];
    if (typeof v === 'string') cfg[f] = decrypt(ring, v, aad(r.location_id, f));
  }
  return {
    locationId: r.location_id,
    kind: r.kind,
    config: parseChannelConfig(cfg),
    defaultRegion: r.default_region,
    conversationProviderId: r.conversation_provider_id,
    emailInboundType: r.email_inbound_type,
    enabled: r.enabled,
    keyId: r.key_id,
    updatedAt: r.updated_at,
  };
}

export async function getChannel(db: Db, ring: KeyRing, locationId: string): Promise<StoredChannel | undefined> {
  const r = await db
    .selectFrom('provider_channels')
    .selectAll()
    .where('location_id', '=', locationId)
    .executeTakeFirst();
  return r ? open(ring, r) : undefined;
}

export function viewOf(c: StoredChannel): ChannelView {
  return { ...c, config: maskChannelConfig(c.config) as Record<string, unknown> };
}

export async function getChannelView(db: Db, ring: KeyRing, locationId: string): Promise<ChannelView | undefined> {
  const c = await getChannel(db, ring, locationId);
  return c ? viewOf(c) : undefined;
}

export async function listChannels(db: Db, ring: KeyRing): Promise<ChannelView[]> {
  const rows = await db.selectFrom('provider_channels').selectAll().orderBy('location_id').execute();
  return rows.map((r) => {
    try {
      return viewOf(open(ring, r));
    } catch (e) {
      return {
        locationId: r.location_id,
        kind: r.kind,
        config: { kind: r.kind, error: `cannot open: ${(e as Error).message}` },
        defaultRegion: r.default_region,
        conversationProviderId: r.conversation_provider_id,
        emailInboundType: r.email_inbound_type,
        enabled: r.enabled,
        keyId: r.key_id,
        updatedAt: r.updated_at,
      };
    }
  });
}

export async function deleteChannel(db: Db, locationId: string): Promise<boolean> {
  const r = await db.deleteFrom('provider_channels').where('location_id', '=', locationId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/**
 * Adapters per location, rebuilt when the row changes (updated_at). The row is re-checked at most once per `freshMs`
 * (one primary-key read), so a reconfiguration made on another replica or by the CLI takes effect within that time;
 * changes made through this process (admin API, service) invalidate the entry at once.
 */
export class ChannelCache {
  readonly #cache = new Map<
    string,
    { at: number; checkedAt: number; channel: StoredChannel; adapter: ChannelAdapter }
  >();
  constructor(
    private readonly db: Db,
    private readonly ring: KeyRing,
    private readonly deps: (locationId: string) => ChannelDeps,
    private readonly freshMs = 1000,
  ) {}

  invalidate(locationId: string): void {
    this.#cache.delete(locationId);
  }

  async get(locationId: string): Promise<{ channel: StoredChannel; adapter: ChannelAdapter } | undefined> {
    const hit = this.#cache.get(locationId);
    const now = Date.now();
    if (hit && now - hit.checkedAt < this.freshMs) return hit;
    const r = await this.db
      .selectFrom('provider_channels')
      .select(['updated_at'])
      .where('location_id', '=', locationId)
      .executeTakeFirst();
    if (!r) {
      this.#cache.delete(locationId);
      return undefined;
    }
    if (hit && hit.at === r.updated_at.getTime()) {
      hit.checkedAt = now;
      return hit;
    }
    const channel = await getChannel(this.db, this.ring, locationId);
    if (!channel) return undefined;
    let adapter: ChannelAdapter;
    try {
      adapter = createChannel(channel.config, this.deps(locationId));
    } catch (e) {
      if (e instanceof ChannelConfigError) throw e;
      throw new ChannelConfigError((e as Error).message);
    }
    const entry = { at: channel.updatedAt.getTime(), checkedAt: now, channel, adapter };
    this.#cache.set(locationId, entry);
    return entry;
  }
}
