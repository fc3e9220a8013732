import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** `Authorization: Bearer <key>` matches, compared in constant time (hashed first so lengths match). */
export function bearerMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m?.[1]) return false;
  return same(m[1].trim(), key);
}

/** The console's session cookie and the header that carries its CSRF token on mutations. */
export const SESSION_COOKIE = 'ghlb_session';
export const CSRF_HEADER = 'x-csrf-token';
export const SESSION_TTL_MS = 8 * 3600_000;

export interface ConsoleSession {
  /** Random id (also what log-out revokes). */
  sid: string;
  expiresAt: number;
  /** The CSRF token bound to this session (double submit: the page sends it back in X-CSRF-Token). */
  csrf: string;
}

/**
 * Where log-outs are kept so that every replica (and a restarted bridge) refuses a logged-out session: the console
 * module backs it with a table. Without one, a log-out holds in this process only.
 */
export interface SessionRevocations {
  isRevoked(sid: string): Promise<boolean>;
  revoke(sid: string, expiresAt: Date): Promise<void>;
}

/**
 * Console sessions are signed, not stored: `<sid>.<expiresAt>.<hmac>` with a key derived from ADMIN_API_KEY, so every
 * replica accepts them and changing the admin key ends them all. The CSRF token is an HMAC of the session id under a
 * second derived key. Log-out revokes the id here and in the shared `SessionRevocations` store (checked by `check`,
 * one indexed read per cookie-authenticated request; bearer requests never touch it); a session ends at its expiry
 * in any case. One instance per bridge (`ctx.adminSessions`).
 */
export class AdminSessions {
  readonly #sign: Buffer;
  readonly #csrf: Buffer;
  readonly #revoked = new Map<string, number>();
  #store: SessionRevocations | undefined;

  constructor(
    adminKey: string,
    private readonly ttlMs = SESSION_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.#sign = createHmac('sha256', adminKey).update('ghl-bridge console session v1').digest();
    this.#csrf = createHmac('sha256', adminKey).update('ghl-bridge console csrf v1').digest();
  }

  #mac(sid: string, exp: number): string {
    return createHmac('sha256', this.#sign).update(`${sid}.${exp}`).digest('base64url');
  }

  #csrfFor(sid: string): string {
    return createHmac('sha256', this.#csrf).update(sid).digest('base64url');
  }

  /** A new session and the cookie value that carries it. */
  issue(): { session: ConsoleSession; cookie: string } {
    const sid = randomBytes(18).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    return {
      session: { sid, expiresAt, csrf: this.#csrfFor(sid) },
      cookie: `${sid}.${expiresAt}.${this.#mac(sid, expiresAt)}`,
    };
  }

  /** The session a cookie value carries, or undefined (malformed, forged, expired or logged out). */
  verify(cookie: string | undefined): ConsoleSession | undefined {
    const [sid, exp, mac, extra] = (cookie ?? '').split('.');
    if (!sid || !exp || !mac || extra !== undefined || !/^\d+$/.test(exp)) return undefined;
    const expiresAt = Number(exp);
    if (!same(mac, this.#mac(sid, expiresAt))) return undefined;
    if (expiresAt <= this.now() || this.#revoked.has(sid)) return undefined;
    return { sid, expiresAt, csrf: this.#csrfFor(sid) };
  }

  /** Keeps log-outs in a store every replica reads (the console module's table). */
  useRevocations(store: SessionRevocations): void {
    this.#store = store;
  }

  /** `verify`, then the shared log-out store: undefined for a session logged out on any replica. */
  async check(cookie: string | undefined): Promise<ConsoleSession | undefined> {
    const s = this.verify(cookie);
    if (!s || !this.#store) return s;
    return (await this.#store.isRevoked(s.sid)) ? undefined : s;
  }

  async revoke(s: ConsoleSession): Promise<void> {
    const now = this.now();
    for (const [k, until] of this.#revoked) if (until <= now) this.#revoked.delete(k);
    this.#revoked.set(s.sid, s.expiresAt);
    await this.#store?.revoke(s.sid, new Date(s.expiresAt));
  }

  csrfMatches(s: ConsoleSession, header: string | string[] | undefined): boolean {
    return typeof header === 'string' && header.length > 0 && same(header, s.csrf);
  }
}

/** Reads one cookie from the Cookie header (the admin scope runs before any cookie plugin could). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when the admin request was authenticated by a console session cookie (not a bearer key). */
    consoleSession?: ConsoleSession;
  }
}

/**
 * Hook (onRequest) guarding the operator API: `Authorization: Bearer <ADMIN_API_KEY>` (CLI, scripts), or the console's
 * session cookie — and then every mutation must carry the session's CSRF token in X-CSRF-Token.
 */
export function requireAdminKey(apiKey: string, sessions: AdminSessions = sessionsFor(apiKey)) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (bearerMatches(req.headers.authorization, apiKey)) return;
    const session = req.headers.authorization
      ? undefined
      : await sessions.check(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (!session) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'admin API: send Authorization: Bearer <ADMIN_API_KEY> (or log in to the console)',
        requestId: req.id,
      });
    }
    if (!SAFE_METHODS.has(req.method) && !sessions.csrfMatches(session, req.headers[CSRF_HEADER])) {
      return reply.code(403).send({
        statusCode: 403,
        error: 'Forbidden',
        message: `console session: a ${req.method} needs the session's CSRF token in ${CSRF_HEADER}`,
        requestId: req.id,
      });
    }
    req.consoleSession = session;
  };
}

/** One AdminSessions per admin key in this process: the default for a guard built without a bridge's own instance. */
const byKey = new Map<string, AdminSessions>();
export function sessionsFor(apiKey: string): AdminSessions {
  let s = byKey.get(apiKey);
  if (!s) byKey.set(apiKey, (s = new AdminSessions(apiKey)));
  return s;
}
