import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import { decrypt, encrypt, type KeyRing } from '../../infra/crypto/aes.js';
import type { Db } from '../../infra/db/index.js';
import { registerSecret } from '../../infra/log/logger.js';
import type { FieldMapping } from './mapping.js';
import type { IntegrationType } from './tables.js';
import './tables.js';

/** Path of a location's workflow-webhook endpoint; the token is its only credential (GHL workflows do not sign). */
export const WORKFLOW_PATH = '/webhooks/workflow/:token';

const aad = (locationId: string) => `calls_endpoints:${locationId}`;
const hash = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
/** 32 random bytes, URL-safe, behind a prefix that says what it is. */
const newToken = () => `wf_${randomBytes(32).toString('base64url')}`;
const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;

export function workflowUrl(publicUrl: string, token: string): string {
  return `${publicUrl}/webhooks/workflow/${token}`;
}

export function maskToken(t: string): string {
  return t.length <= 10 ? '****' : `${t.slice(0, 6)}…${t.slice(-2)}`;
}

export interface EndpointView {
  locationId: string;
  integrationType: IntegrationType;
  mapping: FieldMapping | null;
  maskedUrl: string;
  previousValidUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ResolvedEndpoint {
  locationId: string;
  integrationType: IntegrationType;
  mapping: FieldMapping | null;
}

/**
 * Workflow-webhook endpoints, one per location. The token is looked up by its SHA-256 (a unique index: the look-up
 * costs the same whatever the token), then the stored digest is compared with `timingSafeEqual`; the plaintext is
 * kept AES-GCM encrypted (TOKEN_ENCRYPTION_KEYS, the location as associated data) so `calls workflow-url` can print
 * the URL again. A rotation keeps the previous token valid for an overlap (default none).
 */
export class WorkflowEndpoints {
  /** Resolved tokens by digest, for `cacheMs` (a rotation or a new mapping applies within that on every replica). */
  readonly #cache = new Map<string, { at: number; ep: ResolvedEndpoint | null }>();

  constructor(
    private readonly db: Db,
    private readonly ring: KeyRing,
    private readonly publicUrl: string,
    private readonly cacheMs = 1000,
    /** Where token look-ups run (the store's urgent handle: they are on the webhook's answer path). */
    private readonly lookupDb: Db = db,
  ) {}

  /** The endpoint's URL, created (with a new token) when the location has none. Contains the secret. */
  async url(locationId: string, o: { integrationType?: IntegrationType } = {}): Promise<string> {
    const row = await this.db
      .selectFrom('calls_endpoints')
      .select(['token_enc'])
      .where('location_id', '=', locationId)
      .executeTakeFirst();
    if (row) {
      if (o.integrationType) await this.configure(locationId, { integrationType: o.integrationType });
      const t = decrypt(this.ring, row.token_enc, aad(locationId));
      registerSecret(t);
      return workflowUrl(this.publicUrl, t);
    }
    const token = newToken();
    registerSecret(token);
    await this.db
      .insertInto('calls_endpoints')
      .values({
        location_id: locationId,
        token_hash: hash(token),
        token_enc: encrypt(this.ring, token, aad(locationId)),
        key_id: this.ring.primaryId,
        ...(o.integrationType ? { integration_type: o.integrationType } : {}),
      })
      .onConflict((oc) => oc.column('location_id').doNothing())
      .execute();
    // A concurrent creator may have won: answer with whatever is stored.
    return this.url(locationId, {});
  }

  /** A new token; the previous one stays accepted for `overlapHours` (0 = refused at once). Returns the new URL. */
  async rotate(locationId: string, overlapHours = 0): Promise<string> {
    const token = newToken();
    registerSecret(token);
    const r = await this.db
      .updateTable('calls_endpoints')
      .set({
        previous_hash: overlapHours > 0 ? sql<string>`token_hash` : null,
        previous_until: overlapHours > 0 ? sql<Date>`now() + make_interval(hours => ${overlapHours})` : null,
        token_hash: hash(token),
        token_enc: encrypt(this.ring, token, aad(locationId)),
        key_id: this.ring.primaryId,
        updated_at: sql`now()`,
      })
      .where('location_id', '=', locationId)
      .executeTakeFirst();
    this.#cache.clear();
    if (Number(r.numUpdatedRows) === 0) return this.url(locationId);
    return workflowUrl(this.publicUrl, token);
  }

  async configure(
    locationId: string,
    o: { integrationType?: IntegrationType; mapping?: FieldMapping | null },
  ): Promise<boolean> {
    const set: Record<string, unknown> = { updated_at: sql`now()` };
    if (o.integrationType) set.integration_type = o.integrationType;
    if (o.mapping !== undefined) set.mapping = o.mapping === null ? null : json(o.mapping);
    const r = await this.db
      .updateTable('calls_endpoints')
      .set(set)
      .where('location_id', '=', locationId)
      .executeTakeFirst();
    this.#cache.clear();
    this.#types.clear();
    return Number(r.numUpdatedRows) > 0;
  }

  /** The endpoint a token opens, or null. */
  async resolve(token: string): Promise<ResolvedEndpoint | null> {
    if (!token || token.length > 200) return null;
    const h = hash(token);
    const hit = this.#cache.get(h);
    if (hit && Date.now() - hit.at < this.cacheMs) return hit.ep;
    const ep = await this.#resolve(h);
    if (this.#cache.size >= 10_000) this.#cache.clear();
    this.#cache.set(h, { at: Date.now(), ep });
    return ep;
  }

  async #resolve(h: string): Promise<ResolvedEndpoint | null> {
    const row = await this.lookupDb
      .selectFrom('calls_endpoints')
      .select(['location_id', 'token_hash', 'previous_hash', 'previous_until', 'integration_type', 'mapping'])
      .where((eb) =>
        eb.or([
          eb('token_hash', '=', h),
          eb.and([eb('previous_hash', '=', h), eb('previous_until', '>', sql<Date>`now()`)]),
        ]),
      )
      .executeTakeFirst();
    if (!row) return null;
    const want = Buffer.from(h, 'hex');
    const ok =
      timingSafeEqual(Buffer.from(row.token_hash, 'hex'), want) ||
      (row.previous_hash !== null && timingSafeEqual(Buffer.from(row.previous_hash, 'hex'), want));
    if (!ok) return null;
    return { locationId: row.location_id, integrationType: row.integration_type, mapping: row.mapping };
  }

  /** Integration types by location, for `cacheMs` (asked once per call processed). */
  readonly #types = new Map<string, { at: number; t: IntegrationType }>();

  async integrationType(locationId: string): Promise<IntegrationType> {
    const hit = this.#types.get(locationId);
    if (hit && Date.now() - hit.at < this.cacheMs) return hit.t;
    const t = await this.#integrationType(locationId);
    if (this.#types.size >= 10_000) this.#types.clear();
    this.#types.set(locationId, { at: Date.now(), t });
    return t;
  }

  async #integrationType(locationId: string): Promise<IntegrationType> {
    const r = await this.db
      .selectFrom('calls_endpoints')
      .select('integration_type')
      .where('location_id', '=', locationId)
      .executeTakeFirst();
    return r?.integration_type ?? 'client';
  }

  async list(): Promise<EndpointView[]> {
    const rows = await this.db.selectFrom('calls_endpoints').selectAll().orderBy('location_id').execute();
    return rows.map((r) => ({
      locationId: r.location_id,
      integrationType: r.integration_type,
      mapping: r.mapping,
      maskedUrl: workflowUrl(this.publicUrl, maskToken(decrypt(this.ring, r.token_enc, aad(r.location_id)))),
      previousValidUntil: r.previous_until && r.previous_until > new Date() ? r.previous_until : null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }
}
