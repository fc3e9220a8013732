import { sql } from 'kysely';
import { decrypt, encrypt, reencrypt, type KeyRing } from '../../infra/crypto/aes.js';
import type { Db, StoreKind } from '../../infra/db/index.js';
import type { InstallationRef, TokenProvider } from '../ghl/client.js';
import { oauthToken } from '../ghl/client.js';
import { GhlApiError } from '../ghl/errors.js';
import type { LocationTokenResponse, TokenResponse } from '../ghl/types.js';
import type { Logger } from '../../infra/log/logger.js';
import { registerSecret } from '../../infra/log/logger.js';
import { pauseScope, PauseJobError, PermanentJobError } from '../../infra/queue/index.js';
import { withInstallationLock } from './lock.js';
import type { InstallationRow, TokenSource } from './tables.js';
import './tables.js';
import { companyKey, locationKey } from '../keys.js';

/** The installation cannot act until someone re-installs the app: jobs get parked (PauseJobError). */
export class ReauthRequiredError extends PauseJobError {
  override name = 'ReauthRequiredError';
  constructor(
    readonly installationId: string,
    reason: string,
  ) {
    super(`installation ${installationId} needs re-authorization: ${reason}`);
  }
}

/** No usable installation (never installed, or uninstalled): retrying cannot help. */
export class NotInstalledError extends PermanentJobError {
  override name = 'NotInstalledError';
  constructor(readonly installationId: string) {
    super(`no active installation ${installationId}`);
  }
}

export const installationId = (ref: InstallationRef): string =>
  ref.locationId !== undefined ? locationKey(ref.locationId) : companyKey(ref.companyId);

export interface VaultOptions {
  db: Db;
  kind: StoreKind;
  ring: KeyRing;
  log: Logger;
  apiBase: string;
  clientId: string;
  clientSecret: string;
  /** Clock used for expiry decisions (tests share the emulator's). */
  now?: () => number;
  /** Refresh this long before expiry (proactive). */
  refreshAheadMs?: number;
  onRefresh?: (id: string, source: TokenSource) => void;
  onReauth?: (id: string, reason: string) => void;
  /** Records installation.reauth_required in the same transaction (the events module's publish). */
  publishEvent?: InstallationEventSink;
}

/** Where installation events go (the events module, when it runs), written in the caller's transaction. */
export type InstallationEventSink = (
  db: Db,
  e:
    | { type: 'installation.reauth_required'; installationId: string; reason: string }
    | { type: 'installation.uninstalled'; installationId: string },
) => Promise<unknown>;

interface Cached {
  token: string;
  expiresAt: number;
  /** Refreshed this long before expiresAt. */
  aheadMs: number;
  at: number;
}

const CACHE_MS = 5_000;

/**
 * Encrypted token storage and race-free refresh. Tokens are AES-256-GCM encrypted with the row id
 * as associated data. A refresh happens under the installation's lock (row lock across replicas),
 * re-reads the row first (another holder may have refreshed already) and commits the new pair
 * before anyone uses it — GHL refresh tokens are single use, so a second refresh with the same
 * token would fail with invalid_grant.
 */
export class TokenVault implements TokenProvider {
  readonly #cache = new Map<string, Cached>();
  readonly now: () => number;
  readonly refreshAheadMs: number;
  /** Mints a location token from its company installation; wired by the installations service. */
  mintLocationToken?: (companyId: string, locationId: string) => Promise<LocationTokenResponse>;

  constructor(private readonly o: VaultOptions) {
    this.now = o.now ?? Date.now;
    this.refreshAheadMs = o.refreshAheadMs ?? 5 * 60_000;
  }

  get ring(): KeyRing {
    return this.o.ring;
  }

  seal(id: string, which: 'access' | 'refresh', token: string): string {
    registerSecret(token);
    return encrypt(this.o.ring, token, `ghl_installations:${id}:${which}`);
  }

  open(id: string, which: 'access' | 'refresh', ciphertext: string | null): string | undefined {
    if (!ciphertext) return undefined;
    const t = decrypt(this.o.ring, ciphertext, `ghl_installations:${id}:${which}`);
    registerSecret(t);
    return t;
  }

  forget(id: string): void {
    this.#cache.delete(id);
  }

  async getToken(ref: InstallationRef): Promise<string> {
    const id = installationId(ref);
    const c = this.#cache.get(id);
    const now = this.now();
    if (c && c.expiresAt - c.aheadMs > now && Date.now() - c.at < CACHE_MS) return c.token;
    const row = await this.#read(this.o.db, id);
    const usable = this.#usable(id, row);
    if (usable) return usable;
    return this.#refresh(id, undefined);
  }

  /**
   * Refreshes an active OAuth installation now, even though its access token is still usable: keeps
   * the refresh token of an idle installation from lapsing (GHL: valid a year unless used). Only if
   * it was last refreshed before `cutoff`; false when there was nothing to do.
   */
  async renew(id: string, cutoff: Date): Promise<boolean> {
    const row = await this.#read(this.o.db, id);
    if (!row || row.status !== 'active' || row.token_source !== 'oauth') return false;
    // Refreshed since the caller listed it (another replica's renewal, or traffic): nothing to do. A
    // refresh that commits after this read changes the access token, so the lock below sees it.
    if ((row.refreshed_at ?? row.installed_at).getTime() >= cutoff.getTime()) return false;
    this.#cache.delete(id);
    await this.#refresh(id, this.open(id, 'access', row.access_token_enc) ?? undefined);
    return true;
  }

  async refreshAfter401(ref: InstallationRef, staleToken: string): Promise<string> {
    const id = installationId(ref);
    this.#cache.delete(id);
    return this.#refresh(id, staleToken);
  }

  /** Access token of the row if it is active and not due for refresh (PIT tokens never are). */
  #usable(id: string, row: InstallationRow | undefined, stale?: string): string | undefined {
    if (!row || row.status === 'uninstalled') throw new NotInstalledError(id);
    if (row.status === 'reauth_required') throw new ReauthRequiredError(id, row.status_reason ?? 'refresh rejected');
    const token = this.open(id, 'access', row.access_token_enc);
    if (!token || token === stale) return undefined;
    if (row.token_source === 'pit') return token;
    const exp = row.expires_at?.getTime() ?? 0;
    const aheadMs = this.#aheadMs(exp, row.refreshed_at ?? row.installed_at);
    if (exp - aheadMs <= this.now()) return undefined;
    this.#cache.set(id, { token, expiresAt: exp, aheadMs, at: Date.now() });
    return token;
  }

  /**
   * How long before expiry a token is refreshed: `refreshAheadMs` (5 min), but at most half the token's lifetime, so
   * that short-lived tokens are refreshed once per lifetime (a margin larger than the lifetime would refresh on every
   * call) and still well before GHL would answer 401.
   */
  #aheadMs(expiresAt: number, issuedAt: Date | null | undefined): number {
    const lifetime = issuedAt ? expiresAt - issuedAt.getTime() : Infinity;
    return lifetime > 0 ? Math.min(this.refreshAheadMs, lifetime / 2) : this.refreshAheadMs;
  }

  async #read(q: Db, id: string): Promise<InstallationRow | undefined> {
    return (await q.selectFrom('ghl_installations').selectAll().where('id', '=', id).executeTakeFirst()) as
      InstallationRow | undefined;
  }

  async #refresh(id: string, stale: string | undefined): Promise<string> {
    // A minted location token needs a valid company token: get it before taking the location's
    // lock, so a lock holder never waits for another lock (and never for a second connection).
    const pre = await this.#read(this.o.db, id);
    if (pre?.token_source === 'company' && pre.status === 'active') await this.getToken({ companyId: pre.company_id });

    const out = await withInstallationLock(
      this.o.db,
      this.o.kind,
      id,
      async (q): Promise<{ token: string } | { reauth: string }> => {
        const row = await this.#read(q, id);
        const current = this.#usable(id, row, stale);
        if (current) return { token: current }; // someone else refreshed while we waited
        const r = row!;
        try {
          if (r.token_source === 'pit')
            return {
              reauth: await this.#markReauth(
                q,
                id,
                'private integration token rejected (401); rotate it and configure the new one',
              ),
            };
          if (r.token_source === 'oauth') {
            const refreshToken = this.open(id, 'refresh', r.refresh_token_enc);
            if (!refreshToken) return { reauth: await this.#markReauth(q, id, 'no refresh token stored') };
            const t = await oauthToken(this.o.apiBase, {
              client_id: this.o.clientId,
              client_secret: this.o.clientSecret,
              grant_type: 'refresh_token',
              refresh_token: refreshToken,
              user_type: r.user_type,
            });
            await this.storeTokens(q, id, t);
            this.o.onRefresh?.(id, 'oauth');
            return { token: t.access_token! };
          }
          if (!this.mintLocationToken) throw new Error('location token minting is not wired');
          const t = await this.mintLocationToken(r.company_id, r.location_id!);
          await this.storeTokens(q, id, t);
          this.o.onRefresh?.(id, 'company');
          return { token: t.access_token! };
        } catch (e) {
          // GHL refused the grant (invalid_grant, revoked, app uninstalled): only a new install helps.
          // Transport errors and 5xx/429 are transient and are thrown for the caller to retry.
          if (e instanceof GhlApiError && e.status >= 400 && e.status < 500 && e.status !== 429) {
            return { reauth: await this.#markReauth(q, id, `refresh rejected: HTTP ${e.status} ${e.message}`) };
          }
          throw e;
        }
      },
    );
    if ('reauth' in out) throw new ReauthRequiredError(id, out.reauth);
    return out.token;
  }

  /** Writes a new token pair (and expiry) for an existing row. */
  async storeTokens(q: Db, id: string, t: TokenResponse | LocationTokenResponse): Promise<void> {
    const access = (t as { access_token?: string }).access_token;
    if (!access) throw new Error('token response without access_token');
    const refresh = (t as { refresh_token?: string }).refresh_token;
    const expiresAt = new Date(this.now() + Number((t as { expires_in?: number }).expires_in ?? 86_399) * 1000);
    await q
      .updateTable('ghl_installations')
      .set({
        access_token_enc: this.seal(id, 'access', access),
        ...(refresh ? { refresh_token_enc: this.seal(id, 'refresh', refresh) } : {}),
        key_id: this.o.ring.primaryId,
        expires_at: expiresAt,
        refreshed_at: new Date(this.now()),
        refresh_count: sql`refresh_count + 1`,
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .execute();
    this.#cache.set(id, {
      token: access,
      expiresAt: expiresAt.getTime(),
      aheadMs: this.#aheadMs(expiresAt.getTime(), new Date(this.now())),
      at: Date.now(),
    });
  }

  async #markReauth(q: Db, id: string, reason: string): Promise<string> {
    const r = await q
      .updateTable('ghl_installations')
      .set({ status: 'reauth_required', status_reason: reason, updated_at: sql`now()` })
      .where('id', '=', id)
      // An UNINSTALL that committed meanwhile (GHL revokes the tokens first, so this 401 is its echo) stays uninstalled.
      .where('status', '<>', 'uninstalled')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      this.#cache.delete(id);
      throw new NotInstalledError(id);
    }
    const paused = await pauseScope(q, id, `installation needs re-authorization: ${reason}`);
    await this.o.publishEvent?.(q, { type: 'installation.reauth_required', installationId: id, reason });
    this.#cache.delete(id);
    this.o.log.error(
      { installation: id, paused, reason },
      'GHL installation needs re-authorization; its jobs are paused until the app is installed again',
    );
    this.o.onReauth?.(id, reason);
    return reason;
  }
}

/**
 * Re-encrypts every stored token with the primary (first) key of the ring. Rows already on the
 * primary key are skipped; each row is rewritten in its own short statement, so the command can be
 * re-run after an interruption. Returns counts.
 */
export async function rotateTokenKeys(
  db: Db,
  ring: KeyRing,
): Promise<{ rotated: number; current: number; total: number }> {
  const rows = await db
    .selectFrom('ghl_installations')
    .select(['id', 'access_token_enc', 'refresh_token_enc', 'key_id'])
    .execute();
  let rotated = 0;
  let current = 0;
  for (const r of rows) {
    const aad = (w: string) => `ghl_installations:${r.id}:${w}`;
    const ra = r.access_token_enc ? reencrypt(ring, r.access_token_enc, aad('access')) : undefined;
    const rr = r.refresh_token_enc ? reencrypt(ring, r.refresh_token_enc, aad('refresh')) : undefined;
    if (ra === undefined && rr === undefined) {
      current++;
      if (r.key_id !== ring.primaryId && (r.access_token_enc || r.refresh_token_enc))
        await db.updateTable('ghl_installations').set({ key_id: ring.primaryId }).where('id', '=', r.id).execute();
      continue;
    }
    // Only replace what we read: a concurrent refresh (which writes with the primary key anyway) wins.
    await db
      .updateTable('ghl_installations')
      .set({
        ...(ra ? { access_token_enc: ra } : {}),
        ...(rr ? { refresh_token_enc: rr } : {}),
        key_id: ring.primaryId,
      })
      .where('id', '=', r.id)
      .where((eb) =>
        eb.and([
          eb('access_token_enc', 'is not distinct from', r.access_token_enc),
          eb('refresh_token_enc', 'is not distinct from', r.refresh_token_enc),
        ]),
      )
      .execute();
    rotated++;
  }
  return { rotated, current, total: rows.length };
}
