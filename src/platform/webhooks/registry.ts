import type { ServiceRegistry } from '../../app.js';
import type { Db } from '../../infra/db/index.js';
import type { Logger } from '../../infra/log/logger.js';
import type { WebhookSource } from './tables.js';
import type { RawBuilder } from 'kysely';
import type { z } from 'zod';
import { PermanentJobError } from '../../infra/queue/index.js';
import { orderingKeys } from '../keys.js';

/** An event as handlers see it: the stored row with its validated payload. */
export interface StoredEvent<P = Record<string, unknown>> {
  id: number;
  source: WebhookSource;
  /** Event type; 'ProviderOutboundMessage' for provider deliveries. */
  type: string;
  locationId: string | null;
  companyId: string | null;
  webhookId: string | null;
  receivedAt: Date;
  payload: P;
  /** True when an operator re-ran the event (CLI / admin API). */
  replay: boolean;
  /** How the delivery was authenticated: ed25519 | rsa (+reserialized), 'url_token' (provider, unsigned), 'none'. */
  signature: string;
}

export interface HandlerContext {
  /** Aborted when the worker shuts down; pass it to I/O. */
  signal: AbortSignal;
  log: Logger;
  db: Db;
  jobId: number;
  /** 1-based attempt of the dispatch job; handlers may be re-run, so they must be idempotent. */
  attempt: number;
  maxAttempts: number;
}

export type WebhookHandler<P = Record<string, unknown>> = (event: StoredEvent<P>, ctx: HandlerContext) => Promise<void>;

/** What intake knows about an event before it is stored (for ordering keys). */
export interface IncomingEvent {
  source: WebhookSource;
  type: string;
  locationId: string | null;
  companyId: string | null;
  payload: Record<string, unknown>;
}

/** See `WebhooksService.onStored`. */
export interface StoredSqlHook {
  sql: () => RawBuilder<unknown> | null;
  after?: () => void;
}

export interface HandlerOptions {
  /**
   * Jobs with the same key run one at a time in arrival order. Default: per location + contact
   * when the event names a contact, else none (parallel). Return null for "no ordering".
   */
  orderingKey?: (evt: IncomingEvent) => string | null;
  /**
   * Skip this handler for events whose location (or company) the installations service does not
   * know. Default true; INSTALL-style handlers that must run regardless pass false.
   */
  requireKnownLocation?: boolean;
  /** For logs and metrics; defaults to the type. */
  name?: string;
}

export interface RegisteredHandler {
  fn: WebhookHandler;
  orderingKey?: (evt: IncomingEvent) => string | null;
  requireKnownLocation: boolean;
  name: string;
}

/** Published as ctx.services `webhooks` (see `webhooksService`). */
export interface WebhooksService {
  /**
   * Registers a handler for an event type (the payload `type`, e.g. 'ContactCreate', 'INSTALL',
   * or 'ProviderOutboundMessage' for the provider Delivery URL). Several handlers per type run in
   * registration order inside one job. Returns an unregister function.
   */
  on(type: string, handler: WebhookHandler, opts?: HandlerOptions): () => void;
  /**
   * The same with a typed payload: `payload` parses it for this handler (a payload that does not parse fails the
   * dispatch job for good, naming the field).
   */
  onParsed<P>(type: string, payload: z.ZodType<P>, handler: WebhookHandler<P>, opts?: HandlerOptions): () => void;
  /** Types with at least one handler. */
  handledTypes(): string[];
  /**
   * Joins the intake's insert of newly stored events (every type, handled or not; duplicates excluded): `sql()`
   * returns CTE definitions (`name as (…), …`) reading the CTE `ev` (id, type, location_id, company_id, payload,
   * received_at) — they commit in the same statement as the events — or null to add nothing to this batch. `after`
   * runs after each batch that included them commits. For event subscriptions: a stored event is never without its
   * fan-out rows. Returns an unregister function.
   */
  onStored(hook: StoredSqlHook): () => void;
}

/** Location lookup this module needs, published as ctx.services `knownLocations` (by the installations module). */
export interface LocationLookup {
  isKnownLocation(locationId: string | null, companyId: string | null): Promise<boolean>;
}

export class HandlerRegistry implements WebhooksService {
  readonly #byType = new Map<string, RegisteredHandler[]>();
  readonly #stored: StoredSqlHook[] = [];

  onStored(hook: StoredSqlHook): () => void {
    this.#stored.push(hook);
    return () => {
      const i = this.#stored.indexOf(hook);
      if (i >= 0) this.#stored.splice(i, 1);
    };
  }

  /** The hooks' CTEs for the next intake batch (see `onStored`). */
  storedSql(): { ctes: RawBuilder<unknown>[]; after: Array<() => void> } {
    const ctes: RawBuilder<unknown>[] = [];
    const after: Array<() => void> = [];
    for (const h of this.#stored) {
      const c = h.sql();
      if (!c) continue;
      ctes.push(c);
      if (h.after) after.push(h.after);
    }
    return { ctes, after };
  }

  on(type: string, handler: WebhookHandler, opts: HandlerOptions = {}): () => void {
    if (!type) throw new Error('webhooks.on: event type is required');
    const entry: RegisteredHandler = {
      fn: handler,
      requireKnownLocation: opts.requireKnownLocation ?? true,
      name: opts.name ?? type,
      ...(opts.orderingKey ? { orderingKey: opts.orderingKey } : {}),
    };
    const list = this.#byType.get(type) ?? [];
    list.push(entry);
    this.#byType.set(type, list);
    return () => {
      const l = this.#byType.get(type);
      if (!l) return;
      const i = l.indexOf(entry);
      if (i >= 0) l.splice(i, 1);
      if (!l.length) this.#byType.delete(type);
    };
  }

  onParsed<P>(type: string, payload: z.ZodType<P>, handler: WebhookHandler<P>, opts: HandlerOptions = {}): () => void {
    const name = opts.name ?? type;
    return this.on(
      type,
      (event, ctx) => {
        const r = payload.safeParse(event.payload);
        if (!r.success)
          throw new PermanentJobError(
            `payload of ${type} does not fit handler ${name}: ${r.error.issues
              .map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`)
              .join('; ')}`.slice(0, 1000),
          );
        return handler({ ...event, payload: r.data }, ctx);
      },
      opts,
    );
  }

  get(type: string | null): readonly RegisteredHandler[] {
    return (type && this.#byType.get(type)) || [];
  }

  handledTypes(): string[] {
    return [...this.#byType.keys()];
  }

  /** The first handler-supplied ordering key wins; otherwise location + contact. */
  orderingKey(evt: IncomingEvent): string | null {
    for (const h of this.get(evt.type)) if (h.orderingKey) return h.orderingKey(evt);
    return defaultOrderingKey(evt);
  }
}

function s(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Contact-scoped events of one location are applied in arrival order (create before update). */
export function defaultOrderingKey(evt: IncomingEvent): string | null {
  const p = evt.payload;
  const contact = s(p.contactId) ?? (evt.type.startsWith('Contact') ? s(p.id) : undefined);
  if (!contact || !evt.locationId) return null;
  return orderingKeys.webhookContact(evt.locationId, contact);
}

/** Where an event belongs: locationId, or altId for location-scoped orders/invoices; companyId. */
export function eventScope(
  type: string,
  p: Record<string, unknown>,
): { locationId: string | null; companyId: string | null } {
  let locationId = s(p.locationId) ?? (p.altType === 'location' ? s(p.altId) : undefined) ?? null;
  // LocationCreate/Update describe a location of a company; they are company-level events.
  if (type === 'LocationCreate' || type === 'LocationUpdate') locationId = null;
  const companyId = s(p.companyId) ?? (p.altType === 'company' ? s(p.altId) : undefined) ?? null;
  return { locationId, companyId };
}

/**
 * The webhook handler registry of a bridge, created on first use: a module listed before the
 * webhooks module can register in its `init` too (`webhooksService(ctx).on(...)`).
 */
export function webhooksService(ctx: { services: ServiceRegistry }): WebhooksService {
  return handlerRegistry(ctx);
}

/** The registry itself (the webhooks module's dispatcher and intake read it). */
export function handlerRegistry(ctx: { services: ServiceRegistry }): HandlerRegistry {
  return ctx.services.find('webhooks') ?? ctx.services.provide('webhooks', new HandlerRegistry());
}
