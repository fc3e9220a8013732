import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import { decrypt, encrypt, reencrypt, type KeyRing } from '../../infra/crypto/aes.js';
import type { Db } from '../../infra/db/index.js';
import { registerSecret } from '../../infra/log/logger.js';
import './tables.js';

/** Path of the Delivery URL with its secret token; the token-less path keeps working for signed calls. */
export const PROVIDER_TOKEN_PATH = '/webhooks/ghl/provider/:token';

const aad = (generation: number) => `provider_delivery_tokens:${generation}`;
/** 32 random bytes = 256 bits, URL-safe. */
export const newDeliveryToken = (): string => randomBytes(32).toString('base64url');

/** First 4 and last 2 characters; enough to tell two tokens apart, useless to an attacker. */
export function maskToken(t: string): string {
  return t.length <= 8 ? '****' : `${t.slice(0, 4)}…${t.slice(-2)}`;
}

export function deliveryUrl(publicUrl: string, token: string): string {
  return `${publicUrl}/webhooks/ghl/provider/${token}`;
}

export interface TokenView {
  generation: number;
  masked: string;
  current: boolean;
  createdAt: Date;
  retireAt: Date | null;
}

interface Loaded {
  current: string;
  /** SHA-256 digests of every accepted token (fixed length, so the compare is constant-time). */
  digests: Buffer[];
  source: 'env' | 'store';
  views: TokenView[];
}

const digest = (t: string) => createHash('sha256').update(t, 'utf8').digest();

/**
 * The Delivery URL's secret tokens. From PROVIDER_DELIVERY_TOKENS when set (first = current, all accepted); else from
 * `provider_delivery_tokens`, encrypted like every other secret (AES-256-GCM, the generation as associated data),
 * generated at first start. Every replica re-reads the table at most once a second, so a rotation or retirement
 * applies everywhere within a second.
 */
export class DeliveryTokens {
  #loaded: Loaded | undefined;
  #at = 0;
  #loading: Promise<Loaded> | undefined;

  constructor(
    private readonly db: Db,
    private readonly ring: KeyRing,
    private readonly envTokens: string | undefined,
    private readonly cacheMs = 1000,
  ) {}

  /** Creates generation 1 unless a token exists (or the variable is set). Safe when replicas start together. */
  async ensure(): Promise<void> {
    if (this.envTokens) return;
    const any = await this.db.selectFrom('provider_delivery_tokens').select('generation').limit(1).executeTakeFirst();
    if (!any) {
      await this.db
        .insertInto('provider_delivery_tokens')
        .values({
          generation: 1,
          token_enc: encrypt(this.ring, newDeliveryToken(), aad(1)),
          key_id: this.ring.primaryId,
        })
        .onConflict((oc) => oc.column('generation').doNothing())
        .execute();
    }
    this.invalidate();
  }

  invalidate(): void {
    this.#at = 0;
  }

  async #load(): Promise<Loaded> {
    if (this.#loaded && Date.now() - this.#at < this.cacheMs) return this.#loaded;
    this.#loading ??= this.#read().finally(() => (this.#loading = undefined));
    const l = await this.#loading;
    this.#loaded = l;
    this.#at = Date.now();
    return l;
  }

  async #read(): Promise<Loaded> {
    if (this.envTokens) {
      const list = this.envTokens
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
      for (const t of list) registerSecret(t);
      return {
        current: list[0]!,
        digests: list.map(digest),
        source: 'env',
        views: list.map((t, i) => ({
          generation: i + 1,
          masked: maskToken(t),
          current: i === 0,
          createdAt: new Date(0),
          retireAt: null,
        })),
      };
    }
    const rows = await this.db
      .selectFrom('provider_delivery_tokens')
      .selectAll()
      .where('retired_at', 'is', null)
      .where((eb) => eb.or([eb('retire_at', 'is', null), eb('retire_at', '>', sql<Date>`now()`)]))
      .orderBy('generation', 'desc')
      .execute();
    if (!rows.length)
      throw new Error(
        'no provider delivery token is stored (ghl-bridge start creates one; or set PROVIDER_DELIVERY_TOKENS)',
      );
    const tokens = rows.map((r) => {
      const t = decrypt(this.ring, r.token_enc, aad(r.generation));
      registerSecret(t);
      return t;
    });
    return {
      current: tokens[0]!,
      digests: tokens.map(digest),
      source: 'store',
      views: rows.map((r, i) => ({
        generation: r.generation,
        masked: maskToken(tokens[i]!),
        current: i === 0,
        createdAt: r.created_at,
        retireAt: r.retire_at,
      })),
    };
  }

  /** True when `candidate` is an accepted token. Constant-time per token (compares SHA-256 digests). */
  async check(candidate: string): Promise<boolean> {
    if (!candidate || candidate.length > 256) return false;
    const l = await this.#load();
    const d = digest(candidate);
    let ok = false;
    for (const x of l.digests) ok = timingSafeEqual(x, d) || ok;
    return ok;
  }

  async current(): Promise<string> {
    return (await this.#load()).current;
  }

  async list(): Promise<{ source: 'env' | 'store'; tokens: TokenView[] }> {
    const l = await this.#load();
    return { source: l.source, tokens: l.views };
  }

  /**
   * A new token becomes current; the previous ones stay accepted for `overlapHours` (0 = until retired), or are
   * retired at once with `retirePrevious`. Returns the new token.
   */
  async rotate(o: { overlapHours: number; retirePrevious?: boolean }): Promise<string> {
    if (this.envTokens)
      throw new Error(
        'PROVIDER_DELIVERY_TOKENS is set: rotate by editing it (new token first, old one after it, then remove the old one)',
      );
    const token = newDeliveryToken();
    await this.db.transaction().execute(async (trx) => {
      const max = await trx
        .selectFrom('provider_delivery_tokens')
        .select(sql<number>`coalesce(max(generation), 0)`.as('g'))
        .executeTakeFirst();
      // Two rotations at the same moment: the second fails on the primary key instead of sharing a generation.
      const generation = Number(max?.g ?? 0) + 1;
      await trx
        .insertInto('provider_delivery_tokens')
        .values({ generation, token_enc: encrypt(this.ring, token, aad(generation)), key_id: this.ring.primaryId })
        .execute();
      const others = trx
        .updateTable('provider_delivery_tokens')
        .where('generation', '<', generation)
        .where('retired_at', 'is', null);
      if (o.retirePrevious) await others.set({ retired_at: sql`now()` }).execute();
      else if (o.overlapHours > 0)
        await others
          .where((eb) =>
            eb.or([
              eb('retire_at', 'is', null),
              eb('retire_at', '>', sql<Date>`now() + make_interval(hours => ${o.overlapHours})`),
            ]),
          )
          .set({ retire_at: sql`now() + make_interval(hours => ${o.overlapHours})` })
          .execute();
    });
    registerSecret(token);
    this.invalidate();
    return token;
  }

  /** Refuses every token but the current one from now on. Returns how many were retired. */
  async retirePrevious(): Promise<number> {
    if (this.envTokens) throw new Error('PROVIDER_DELIVERY_TOKENS is set: remove the old token from it instead');
    const top = await this.db
      .selectFrom('provider_delivery_tokens')
      .select(sql<number>`max(generation)`.as('g'))
      .where('retired_at', 'is', null)
      .executeTakeFirst();
    if (!top?.g) return 0;
    const r = await this.db
      .updateTable('provider_delivery_tokens')
      .set({ retired_at: sql`now()` })
      .where('generation', '<', Number(top.g))
      .where('retired_at', 'is', null)
      .executeTakeFirst();
    this.invalidate();
    return Number(r.numUpdatedRows);
  }
}

/** `keys rotate`: re-encrypts stored delivery tokens with the primary key. */
export async function rotateDeliveryTokenKeys(db: Db, ring: KeyRing): Promise<number> {
  const rows = await db.selectFrom('provider_delivery_tokens').select(['generation', 'token_enc']).execute();
  let n = 0;
  for (const r of rows) {
    const again = reencrypt(ring, r.token_enc, aad(r.generation));
    if (!again) continue;
    await db
      .updateTable('provider_delivery_tokens')
      .set({ token_enc: again, key_id: ring.primaryId })
      .where('generation', '=', r.generation)
      .where('token_enc', '=', r.token_enc)
      .execute();
    n++;
  }
  return n;
}
