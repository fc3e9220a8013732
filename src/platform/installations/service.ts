import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import { mask } from '../../infra/crypto/aes.js';
import type { Db } from '../../infra/db/index.js';
import type { GhlClient } from '../ghl/client.js';
import { oauthToken } from '../ghl/client.js';
import type { TokenResponse } from '../ghl/types.js';
import type { Logger } from '../../infra/log/logger.js';
import { z } from 'zod';
import { cancelScope, defineJob, PRIORITY, resumeScope } from '../../infra/queue/index.js';
import type { InstallationRow } from './tables.js';
import { installationId, type InstallationEventSink, type TokenVault } from './vault.js';
import { companyKey, isCompanyKey, isLocationKey, isResourceKey, locationKey, resourceKey } from '../keys.js';

export const JOB_SYNC_COMPANY = 'ghl.installations.sync_company';
export const JOB_MINT_LOCATION = 'ghl.installations.mint_location';
export const JOB_RECONCILE = 'ghl.installations.reconcile';

/** A bulk (company) install: mint tokens for its approved locations. */
export const syncCompanyJob = defineJob<
  { companyId: string; approvedLocations?: string[] | undefined },
  InstallationsService
>({
  kind: JOB_SYNC_COMPANY,
  payload: z.object({ companyId: z.string().min(1), approvedLocations: z.array(z.string()).optional() }),
  scope: (p) => companyKey(p.companyId),
  perform: async (p, _job, h) => {
    await h.deps.syncCompany(p.companyId, p.approvedLocations ?? [], h.signal);
  },
});

/** An INSTALL of one location of a bulk install: mint its token from the company's. */
export const mintLocationJob = defineJob<{ companyId: string; locationId: string }, InstallationsService>({
  kind: JOB_MINT_LOCATION,
  payload: z.object({ companyId: z.string().min(1), locationId: z.string().min(1) }),
  scope: (p) => companyKey(p.companyId),
  perform: async (p, _job, h) => {
    await h.deps.mintLocation(p.companyId, p.locationId, 'bulk');
  },
});

/** Periodic reconciliation of installations with GHL; the next run is scheduled when one ends (`reschedule`). */
export const reconcileJob = defineJob<
  Record<string, never>,
  { service: InstallationsService; reschedule: (db: Db) => Promise<void> }
>({
  kind: JOB_RECONCILE,
  payload: z.object({}).strict(),
  priority: PRIORITY.bulk,
  maxAttempts: 1,
  perform: async (_p, _job, h) => {
    try {
      await h.deps.service.reconcile(h.signal);
    } finally {
      await h.deps.reschedule(h.db);
    }
  },
});

export class OAuthStateError extends Error {
  override name = 'OAuthStateError';
}

/** What callers see of an installation: never a token, at most a masked hint of one. */
export interface InstallationView {
  id: string;
  kind: 'location' | 'company';
  companyId: string;
  locationId: string | null;
  userType: 'Location' | 'Company';
  tokenSource: 'oauth' | 'company' | 'pit';
  scopes: string[];
  isBulk: boolean;
  status: 'active' | 'reauth_required' | 'uninstalled';
  statusReason: string | null;
  expiresAt: Date | null;
  refreshedAt: Date | null;
  installedAt: Date;
  accessToken: string;
}

export interface InstallationsServiceOptions {
  db: Db;
  vault: TokenVault;
  client: GhlClient;
  log: Logger;
  apiBase: string;
  marketplaceBase: string;
  clientId: string;
  clientSecret: string;
  scopes: string;
  redirectUri: string;
  stateTtlMs?: number;
  mintConcurrency?: number;
  /** Records installation.uninstalled in the uninstall's transaction. */
  publishEvent?: InstallationEventSink;
}

/**
 * Installations: the OAuth install flow, agency/bulk installs (location tokens minted from the
 * company token), INSTALL/UNINSTALL webhooks, Private Integration Tokens and reconciliation with
 * GHL's list of installed locations.
 */
export class InstallationsService {
  readonly appId: string;
  /** isKnownLocation's remembered yes answers: key → until (epoch ms). */
  readonly #known = new Map<string, number>();
  constructor(private readonly o: InstallationsServiceOptions) {
    this.appId = o.clientId.split('-')[0] ?? o.clientId;
    o.vault.mintLocationToken = (companyId, locationId) =>
      o.client.oauth.locationToken({ companyId, locationId }, { installation: { companyId } });
  }

  get now(): () => number {
    return this.o.vault.now;
  }

  // ---- install flow ----

  /**
   * chooselocation URL (v2 path) with a fresh single-use state. The state is self-contained and writes nothing:
   * `<expiry ms>.<nonce>.<HMAC-SHA256 of both>`, keyed from the client secret, so an unauthenticated caller cannot
   * grow any table by asking for install links.
   */
  async authorizeUrl(): Promise<string> {
    const payload = `${this.now() + (this.o.stateTtlMs ?? 10 * 60_000)}.${randomBytes(16).toString('base64url')}`;
    const state = `${payload}.${this.#stateMac(payload)}`;
    const u = new URL('/v2/oauth/chooselocation', this.o.marketplaceBase);
    u.searchParams.set('response_type', 'code');
    u.searchParams.set('redirect_uri', this.o.redirectUri);
    u.searchParams.set('client_id', this.o.clientId);
    u.searchParams.set('scope', this.o.scopes);
    u.searchParams.set('state', state);
    return u.toString();
  }

  #stateMac(payload: string): string {
    this.#stateKey ??= createHmac('sha256', this.o.clientSecret).update('ghl-bridge oauth state v1').digest();
    return createHmac('sha256', this.#stateKey).update(payload).digest('base64url');
  }

  #stateKey: Buffer | undefined;

  /**
   * Consumes a state exactly once, rejecting forged, expired and used ones. Single use without a row written at
   * install time: the nonce of a genuine, unexpired state is inserted here under its unique key, and a second
   * callback with the same state finds it taken (atomic on both stores). Nonces are kept until their state expires,
   * after which the expiry check alone refuses the state, so they are pruned then.
   */
  async consumeState(state: string | undefined): Promise<void> {
    if (!state) throw new OAuthStateError('missing state');
    const m = /^(\d{13,15})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(state);
    if (!m) throw new OAuthStateError('malformed state');
    const [, exp = '', nonce = '', mac = ''] = m; // all three groups are mandatory in the pattern
    const expected = Buffer.from(this.#stateMac(`${exp}.${nonce}`));
    if (!timingSafeEqual(expected, Buffer.from(mac))) throw new OAuthStateError('state signature does not match');
    const expiresAt = Number(exp);
    if (expiresAt <= this.now()) throw new OAuthStateError('expired state');
    const r = await this.o.db
      .insertInto('ghl_oauth_states')
      .values({ state: nonce, expires_at: new Date(expiresAt), used_at: new Date(this.now()) })
      .onConflict((oc) => oc.column('state').doNothing())
      .returning('state')
      .executeTakeFirst();
    if (!r) throw new OAuthStateError('state already used');
    await this.o.db.deleteFrom('ghl_oauth_states').where('expires_at', '<', new Date(this.now())).execute();
  }

  /** GET /oauth/callback: state check, code exchange (form-encoded), installation recorded. */
  async completeInstall(code: string, state: string | undefined): Promise<InstallationView> {
    await this.consumeState(state);
    const t = await oauthToken(this.o.apiBase, {
      client_id: this.o.clientId,
      client_secret: this.o.clientSecret,
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.o.redirectUri,
    });
    return this.recordOAuthInstall(t);
  }

  /** Stores an OAuth token response as an installation (new, re-installed or re-authorized). */
  async recordOAuthInstall(t: TokenResponse): Promise<InstallationView> {
    const isCompany = t.userType === 'Company' || !t.locationId;
    if (!t.companyId || (!isCompany && !t.locationId)) throw new Error('token response without companyId/locationId');
    const companyId = t.companyId;
    const id = isCompany ? companyKey(t.companyId) : locationKey(t.locationId!);
    await this.o.db.transaction().execute(async (trx) => {
      await this.#upsert(trx, id, {
        kind: isCompany ? 'company' : 'location',
        company_id: t.companyId!,
        location_id: isCompany ? null : t.locationId!,
        user_type: isCompany ? 'Company' : 'Location',
        token_source: 'oauth',
        scopes: t.scope ?? '',
        user_id: t.userId ?? null,
        plan_id: t.planId ?? null,
        is_bulk: !!t.isBulkInstallation,
        install_to_future: !!t.installToFutureLocations,
      });
      this.o.vault.forget(id);
      await this.o.vault.storeTokens(trx, id, t);
      // A new install re-authorizes: parked jobs run again.
      await resumeScope(trx, id);
      if (isCompany && t.isBulkInstallation) {
        await syncCompanyJob.enqueue(trx, { companyId, approvedLocations: t.approvedLocations ?? [] });
      }
    });
    this.o.log.info(
      { installation: id, userType: t.userType, bulk: !!t.isBulkInstallation },
      'GHL installation recorded',
    );
    return (await this.get(id))!;
  }

  async #upsert(
    q: Db,
    id: string,
    v: Pick<
      InstallationRow,
      | 'kind'
      | 'company_id'
      | 'location_id'
      | 'user_type'
      | 'token_source'
      | 'scopes'
      | 'user_id'
      | 'plan_id'
      | 'is_bulk'
      | 'install_to_future'
    >,
  ): Promise<void> {
    const reset = {
      status: 'active' as const,
      status_reason: null,
      uninstalled_at: null,
      updated_at: sql<Date>`now()`,
    };
    await q
      .insertInto('ghl_installations')
      .values({
        id,
        ...v,
        status: 'active',
        status_reason: null,
        access_token_enc: null,
        refresh_token_enc: null,
        key_id: null,
        expires_at: null,
        refreshed_at: null,
        uninstalled_at: null,
      })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({
          ...v,
          ...reset,
          // A different token source replaces the old tokens (e.g. OAuth install after a PIT).
          refresh_token_enc: v.token_source === 'oauth' ? sql`ghl_installations.refresh_token_enc` : null,
        }),
      )
      .execute();
  }

  // ---- agency / bulk installs ----

  /** Mints and stores a location token from the company installation. */
  async mintLocation(companyId: string, locationId: string, lane: 'live' | 'bulk' = 'bulk'): Promise<void> {
    const company = await this.getRow(companyKey(companyId));
    if (!company || company.status !== 'active') throw new Error(`company ${companyId} is not installed`);
    const t = await this.o.client.oauth.locationToken({ companyId, locationId }, { installation: { companyId }, lane });
    const id = locationKey(locationId);
    await this.o.db.transaction().execute(async (trx) => {
      await this.#upsert(trx, id, {
        kind: 'location',
        company_id: companyId,
        location_id: locationId,
        user_type: 'Location',
        token_source: 'company',
        scopes: (t as { scope?: string }).scope ?? company.scopes,
        user_id: (t as { userId?: string }).userId ?? company.user_id,
        plan_id: (t as { planId?: string }).planId ?? company.plan_id,
        is_bulk: true,
        install_to_future: false,
      });
      this.o.vault.forget(id);
      await this.o.vault.storeTokens(trx, id, t);
      await resumeScope(trx, id);
    });
  }

  /**
   * Tokens for every installed location of a bulk/agency install: the approved list from the token
   * response plus GHL's installed-locations list, minted with bounded concurrency.
   */
  async syncCompany(
    companyId: string,
    approved: string[] = [],
    signal?: AbortSignal,
  ): Promise<{ minted: number; failed: number }> {
    const ids = new Set(approved);
    for await (const l of this.o.client.oauth.iterateInstalled(
      { companyId, appId: this.appId, isInstalled: true },
      { installation: { companyId }, lane: 'bulk', ...(signal ? { signal } : {}) },
    )) {
      if (l.isInstalled !== false) ids.add(l._id);
    }
    const todo = [...ids];
    let next = 0;
    let minted = 0;
    let failed = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < todo.length) {
        const loc = todo[next++]!;
        const existing = await this.getRow(locationKey(loc));
        // A location installed by its own user (oauth) keeps its own tokens.
        if (existing?.status === 'active' && existing.token_source !== 'company') continue;
        try {
          await this.mintLocation(companyId, loc, 'bulk');
          minted++;
        } catch (e) {
          failed++;
          this.o.log.warn({ err: e, companyId, locationId: loc }, 'minting a location token failed');
        }
        const done = minted + failed;
        if (done % 10 === 0 || done === todo.length)
          this.o.log.info({ companyId, done, total: todo.length, failed }, 'bulk install: location tokens');
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.mintConcurrency ?? 5, todo.length) }, worker));
    this.o.log.info(
      { companyId, minted, failed, total: todo.length, ms: Date.now() - started },
      'bulk install: location tokens done',
    );
    if (failed) throw new Error(`${failed} of ${todo.length} location tokens could not be minted`);
    return { minted, failed };
  }

  // ---- lifecycle webhooks (plain functions of the service; registered with the intake) ----

  /** INSTALL: a new location of a bulk install gets a token (if the company token is already here). */
  async onInstall(p: { companyId?: string | null; locationId?: string | null }, db: Db = this.o.db): Promise<void> {
    if (!p.companyId || !p.locationId) return; // agency-level INSTALL: tokens come with the code exchange
    const company = await this.getRow(companyKey(p.companyId));
    const loc = await this.getRow(locationKey(p.locationId));
    if (loc?.status === 'active' && loc.token_source !== 'company') return;
    // Company token not here yet (INSTALL before the code exchange): the sync after the exchange covers it.
    // Only bulk installs mint location tokens; a location's own install brings its own token.
    if (!company || company.status !== 'active' || !company.is_bulk) return;
    await mintLocationJob.enqueue(
      db,
      { companyId: p.companyId, locationId: p.locationId },
      { dedupeKey: `mint:${p.locationId}:${Math.floor(this.now() / 60_000)}` },
    );
  }

  /** UNINSTALL: tokens deleted, pending jobs of that installation cancelled. */
  async onUninstall(
    p: { companyId?: string | null; locationId?: string | null },
    db: Db = this.o.db,
  ): Promise<boolean> {
    const id = resourceKey(p);
    if (!id) return false;
    const run = async (trx: Db) => {
      const r = await trx
        .updateTable('ghl_installations')
        .set({
          status: 'uninstalled',
          status_reason: 'uninstalled',
          access_token_enc: null,
          refresh_token_enc: null,
          expires_at: null,
          uninstalled_at: sql`now()`,
          updated_at: sql`now()`,
        })
        .where('id', '=', id)
        .executeTakeFirst();
      const cancelled = await cancelScope(trx, id, 'app uninstalled');
      if (Number(r.numUpdatedRows) > 0)
        await this.o.publishEvent?.(trx, { type: 'installation.uninstalled', installationId: id });
      return { n: Number(r.numUpdatedRows), cancelled };
    };
    const { n, cancelled } = db === this.o.db ? await db.transaction().execute(run) : await run(db);
    this.o.vault.forget(id);
    this.#known.clear();
    this.o.log.info({ installation: id, cancelled }, 'GHL installation removed (UNINSTALL)');
    return n > 0;
  }

  // ---- Private Integration Tokens ----

  /** A static token for one location (or company): never refreshed; a 401 marks it reauth_required. */
  async configurePit(
    ref: { locationId: string; companyId: string } | { companyId: string; locationId?: undefined },
    token: string,
  ): Promise<InstallationView> {
    const id = ref.locationId ? locationKey(ref.locationId) : companyKey(ref.companyId);
    await this.o.db.transaction().execute(async (trx) => {
      await this.#upsert(trx, id, {
        kind: ref.locationId ? 'location' : 'company',
        company_id: ref.companyId,
        location_id: ref.locationId ?? null,
        user_type: ref.locationId ? 'Location' : 'Company',
        token_source: 'pit',
        scopes: '',
        user_id: null,
        plan_id: null,
        is_bulk: false,
        install_to_future: false,
      });
      await trx
        .updateTable('ghl_installations')
        .set({
          access_token_enc: this.o.vault.seal(id, 'access', token),
          refresh_token_enc: null,
          key_id: this.o.vault.ring.primaryId,
          expires_at: null,
        })
        .where('id', '=', id)
        .execute();
      await resumeScope(trx, id);
    });
    this.o.vault.forget(id);
    return (await this.get(id))!;
  }

  // ---- idle installations ----

  /**
   * Refreshes the tokens of active OAuth installations (location and company) not refreshed for
   * `idleMs`. A location with no traffic never refreshes on its own, and its refresh token lapses a
   * year after its last use; a refusal marks it reauth_required as any refresh would. At most `max`
   * per run, longest idle first, so a first run over many old installations is spread out.
   */
  async renewIdle(
    idleMs: number,
    o: { max?: number; signal?: AbortSignal } = {},
  ): Promise<{ renewed: number; failed: number }> {
    const cutoff = new Date(this.now() - idleMs);
    const rows = await this.o.db
      .selectFrom('ghl_installations')
      .select('id')
      .where('status', '=', 'active')
      .where('token_source', '=', 'oauth')
      .where(sql<Date>`coalesce(refreshed_at, installed_at)`, '<', cutoff)
      .orderBy(sql`coalesce(refreshed_at, installed_at)`)
      .limit(o.max ?? 200)
      .execute();
    let renewed = 0;
    let failed = 0;
    for (const r of rows) {
      if (o.signal?.aborted) break;
      try {
        if (await this.o.vault.renew(r.id, cutoff)) renewed++;
      } catch (e) {
        failed++;
        this.o.log.warn({ err: e, installation: r.id }, 'renewing the tokens of an idle installation failed');
      }
    }
    if (rows.length) this.o.log.info({ renewed, failed }, 'idle installations renewed');
    return { renewed, failed };
  }

  // ---- reconcile ----

  /**
   * Compares our installations with GHL's /oauth/installedLocations for every company install:
   * locations GHL lists but we lack get tokens (bulk installs); locations of that company we hold
   * but GHL no longer lists as installed are treated as uninstalled.
   */
  async reconcile(signal?: AbortSignal): Promise<{ added: number; removed: number; companies: number }> {
    const companies = await this.o.db
      .selectFrom('ghl_installations')
      .selectAll()
      .where('kind', '=', 'company')
      .where('status', '=', 'active')
      .where('token_source', '=', 'oauth')
      .execute();
    let added = 0;
    let removed = 0;
    for (const c of companies) {
      const installed = new Set<string>();
      try {
        for await (const l of this.o.client.oauth.iterateInstalled(
          { companyId: c.company_id, appId: this.appId },
          { installation: { companyId: c.company_id }, lane: 'bulk', ...(signal ? { signal } : {}) },
        )) {
          if (l.isInstalled) installed.add(l._id);
        }
      } catch (e) {
        this.o.log.warn({ err: e, companyId: c.company_id }, 'reconcile: listing installed locations failed');
        continue;
      }
      const ours = await this.o.db
        .selectFrom('ghl_installations')
        .select(['id', 'location_id', 'status', 'token_source'])
        .where('company_id', '=', c.company_id)
        .where('kind', '=', 'location')
        .execute();
      const active = new Set(ours.filter((r) => r.status !== 'uninstalled').map((r) => r.location_id!));
      for (const r of ours) {
        if (r.status !== 'uninstalled' && r.token_source !== 'pit' && !installed.has(r.location_id!)) {
          if (await this.onUninstall({ locationId: r.location_id })) removed++;
        }
      }
      if (c.is_bulk) {
        for (const loc of installed) {
          if (active.has(loc)) continue;
          try {
            await this.mintLocation(c.company_id, loc, 'bulk');
            added++;
          } catch (e) {
            this.o.log.warn({ err: e, locationId: loc }, 'reconcile: minting failed');
          }
        }
      }
    }
    if (added || removed) this.o.log.info({ added, removed }, 'installations reconciled with GHL');
    return { added, removed, companies: companies.length };
  }

  // ---- lookups ----

  async getRow(id: string): Promise<InstallationRow | undefined> {
    return (await this.o.db.selectFrom('ghl_installations').selectAll().where('id', '=', id).executeTakeFirst()) as
      InstallationRow | undefined;
  }

  async get(idOrLocationId: string): Promise<InstallationView | undefined> {
    const id = isResourceKey(idOrLocationId) ? idOrLocationId : locationKey(idOrLocationId);
    const r = await this.getRow(id);
    return r ? this.view(r) : undefined;
  }

  async list(f: { status?: InstallationRow['status']; companyId?: string } = {}): Promise<InstallationView[]> {
    let q = this.o.db.selectFrom('ghl_installations').selectAll();
    if (f.status) q = q.where('status', '=', f.status);
    if (f.companyId) q = q.where('company_id', '=', f.companyId);
    return (await q.orderBy('id').execute()).map((r) => this.view(r as InstallationRow));
  }

  /**
   * For webhook dispatch (asked for every event): do we act for this location (or company)? A yes is remembered for a
   * second: an uninstall in this process forgets at once, one on another replica is seen within that second.
   */
  async isKnownLocation(locationId: string | null, companyId: string | null): Promise<boolean> {
    const ids = [
      locationId ? locationKey(locationId) : undefined,
      companyId ? companyKey(companyId) : undefined,
    ].filter((x): x is string => !!x);
    if (!ids.length) return false;
    const key = ids.join('|');
    const now = Date.now();
    if ((this.#known.get(key) ?? 0) > now) return true;
    const rows = await this.o.db
      .selectFrom('ghl_installations')
      .select(['id', 'status', 'is_bulk'])
      .where('id', 'in', ids)
      .execute();
    const loc = rows.find((r) => isLocationKey(r.id));
    // A location of a bulk-installed company whose token is not minted yet still belongs to us.
    const known = loc
      ? loc.status !== 'uninstalled'
      : rows.some((r) => isCompanyKey(r.id) && r.status !== 'uninstalled' && (!locationId || r.is_bulk));
    if (known) {
      if (this.#known.size >= 10_000) this.#known.clear();
      this.#known.set(key, now + 1000);
    }
    return known;
  }

  view(r: InstallationRow): InstallationView {
    let hint = '';
    try {
      hint = mask(this.o.vault.open(r.id, 'access', r.access_token_enc));
    } catch {
      hint = '(undecryptable)';
    }
    return {
      id: r.id,
      kind: r.kind,
      companyId: r.company_id,
      locationId: r.location_id,
      userType: r.user_type,
      tokenSource: r.token_source,
      scopes: r.scopes ? r.scopes.split(' ').filter(Boolean) : [],
      isBulk: r.is_bulk,
      status: r.status,
      statusReason: r.status_reason,
      expiresAt: r.expires_at,
      refreshedAt: r.refreshed_at,
      installedAt: r.installed_at,
      accessToken: hint,
    };
  }
}

export { installationId };
