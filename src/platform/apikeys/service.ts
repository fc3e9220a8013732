import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../../infra/db/index.js';
import { bearerMatches } from '../../infra/http/admin-auth.js';
import { errorBody } from '../../infra/http/errors.js';
import './tables.js';

/** Who is calling a /v1 route: an API key (its locations), or the operator's admin key (every location). */
export interface ApiPrincipal {
  /** null: the admin key. */
  keyId: string | null;
  locationIds: readonly string[] | '*';
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  locationIds: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export type ApiKeyPreHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the API-key guard of /v1 routes. */
    apiPrincipal?: ApiPrincipal;
  }
}

export const KEY_PREFIX = 'gbk_';
const PREFIX_SHOWN = KEY_PREFIX.length + 8;
/** last_used_at is written at most this often per key (it is a hint for operators, not an audit log). */
const LAST_USED_EVERY_MS = 60_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A location id as the bridge accepts it elsewhere (ids.ts alphabet). */
const LOCATION_ID = /^[A-Za-z0-9_-]{1,64}$/;

export class ApiKeyInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiKeyInputError';
  }
}

/**
 * API keys of the public /v1 API. A key is 32 random bytes (base64url) behind `gbk_`; only its SHA-256 is stored,
 * so a look-up is one indexed read and a leaked table yields no usable key. (A slow password hash buys nothing for
 * keys of 256 random bits.) Each key is scoped to a list of locations; the admin key passes everywhere.
 */
export class ApiKeyService {
  constructor(
    private readonly db: Db,
    private readonly adminKey: string | undefined,
  ) {}

  async create(input: { name: string; locationIds: string[] }): Promise<{ id: string; key: string }> {
    const name = input.name.trim();
    if (!name || name.length > 200) throw new ApiKeyInputError('name', 'expected a name of 1–200 characters');
    if (input.locationIds.length === 0) throw new ApiKeyInputError('locationIds', 'expected at least one location id');
    for (const [i, l] of input.locationIds.entries())
      if (!LOCATION_ID.test(l))
        throw new ApiKeyInputError(`locationIds.${i}`, `expected a location id (1–64 of A-Z a-z 0-9 _ -), got "${l}"`);
    const key = KEY_PREFIX + randomBytes(32).toString('base64url');
    const id = 'key_' + randomBytes(8).toString('hex');
    await this.db
      .insertInto('api_keys')
      .values({
        id,
        name,
        prefix: key.slice(0, PREFIX_SHOWN),
        key_hash: sha256(key),
        location_ids: JSON.stringify([...new Set(input.locationIds)]),
      })
      .execute();
    return { id, key };
  }

  async list(): Promise<ApiKeyInfo[]> {
    const rows = await this.db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      prefix: r.prefix,
      locationIds: r.location_ids,
      createdAt: r.created_at,
      lastUsedAt: r.last_used_at,
      revokedAt: r.revoked_at,
    }));
  }

  /** Revokes a key at once (every replica reads the table on each request). False when unknown or already revoked. */
  async revoke(id: string): Promise<boolean> {
    const r = await this.db
      .updateTable('api_keys')
      .set({ revoked_at: sql`now()` })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** The principal behind `Authorization: Bearer <key>`, or null (missing, unknown, revoked). */
  async authenticate(authorization: string | undefined): Promise<ApiPrincipal | null> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const presented = m?.[1];
    if (!presented) return null;
    if (!presented.startsWith(KEY_PREFIX)) {
      return this.adminKey !== undefined && bearerMatches(authorization, this.adminKey)
        ? { keyId: null, locationIds: '*' }
        : null;
    }
    const row = await this.db
      .selectFrom('api_keys')
      .select(['id', 'location_ids', 'revoked_at', 'last_used_at'])
      .where('key_hash', '=', sha256(presented))
      .executeTakeFirst();
    if (!row || row.revoked_at) return null;
    if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > LAST_USED_EVERY_MS) {
      // A hint for operators; never holds up or fails the request.
      void this.db
        .updateTable('api_keys')
        .set({ last_used_at: sql`now()` })
        .where('id', '=', row.id)
        .execute()
        .catch(() => undefined);
    }
    return { keyId: row.id, locationIds: row.location_ids };
  }

  /**
   * The guard of /v1 routes, registered as `preValidation`: 401 without a valid key, 403 (naming the location) when
   * the key is not scoped to the request's location. It runs after parsing and before validation, so an
   * unauthenticated caller learns nothing of the route's schema; `locationOf` reads the raw (unvalidated) params or
   * body, which only ever narrows access (an id that fails validation matches no key's locations).
   */
  requireLocation(locationOf: (req: FastifyRequest) => string | undefined): ApiKeyPreHandler {
    return async (req, reply) => {
      const principal = await this.authenticate(req.headers.authorization);
      if (!principal) {
        await reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send(
            errorBody(
              req.id,
              401,
              'send Authorization: Bearer <API key> (create one with `ghl-bridge api-keys create`)',
            ),
          );
        return;
      }
      const location = locationOf(req);
      if (principal.locationIds !== '*' && (location === undefined || !principal.locationIds.includes(location))) {
        await reply
          .code(403)
          .send(
            errorBody(
              req.id,
              403,
              location === undefined
                ? 'this API key is scoped to locations; the request names none'
                : `this API key is not allowed for location ${location}`,
            ),
          );
        return;
      }
      req.apiPrincipal = principal;
    };
  }
}
