import type { Logger } from '../../infra/log/logger.js';
import { registerSecret } from '../../infra/log/logger.js';
import { GhlApiError, ghlMessage, traceIdOf } from './errors.js';
import { RateLimitWaitTimeout, type Lane, type RateLimiter, type RateTicket } from './ratelimit.js';
import { RetryLaterError } from '../../infra/queue/errors.js';
import type * as T from './types.js';
import { versionFor } from './versions.js';
import { withDeadline } from '../../infra/util/deadline.js';

/** The installation a call acts for: its token and its rate-limit bucket. */
export type InstallationRef =
  { locationId: string; companyId?: undefined } | { companyId: string; locationId?: undefined };

export interface CallOptions {
  installation: InstallationRef;
  /** 'live' for user-facing messaging (never starved), 'bulk' for sync/import. Default 'live'. */
  lane?: Lane;
  signal?: AbortSignal;
  /**
   * For calls made inside a queued job: when no rate-limit slot is granted within this time (the installation's
   * budget is spent, or GHL answered 429 and the window has not rolled), the call gives up with a RetryLaterError
   * instead of waiting, so the job frees its worker slot and runs again later without using up an attempt.
   */
  maxWaitMs?: number;
}

/** Supplies installation tokens; implemented by the token vault. */
export interface TokenProvider {
  /** A valid access token for exactly this installation (refreshing first if due). */
  getToken(ref: InstallationRef, signal?: AbortSignal): Promise<string>;
  /** GHL answered 401 with `staleToken`: refresh once (unless someone already did) and return the new token. */
  refreshAfter401(ref: InstallationRef, staleToken: string, signal?: AbortSignal): Promise<string>;
}

export interface ClientMetrics {
  request(op: string, status: number, ms: number): void;
}

export interface GhlClientOptions {
  apiBase: string;
  tokens: TokenProvider;
  limiter: RateLimiter;
  log: Logger;
  metrics?: ClientMetrics;
  timeoutMs?: number;
  /** Retries of 5xx / network errors (429s are waited out separately, up to max429). */
  maxRetries?: number;
  max429?: number;
  backoffBaseMs?: number;
}

interface Op {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, unknown> | undefined;
  body?: unknown;
  form?: Record<string, string>;
  /** Safe to repeat after an ambiguous failure (GET, upsert by natural key, searches). */
  idempotent: boolean;
  /** For non-idempotent calls: after an ambiguous failure, looks for the effect; a value = it happened. */
  verify?: () => Promise<unknown>;
  /**
   * The answer is binary (a recording): a 2xx resolves to `{ contentType, data }`; `'stream'`: to
   * `{ contentType, contentLength, body }` with the body unread (the deadline covers the headers only).
   */
  binary?: boolean | 'stream';
}

/** A binary answer (recordings). */
export interface BinaryBody {
  contentType: string;
  data: Buffer;
}

/** A binary answer not read yet (recordings streamed through): cancel `body` to stop the download. */
export interface BinaryStream {
  contentType: string;
  contentLength: number | null;
  body: ReadableStream<Uint8Array>;
}

const resourceOf = (ref: InstallationRef): string => (ref.locationId ?? ref.companyId) as string;

function qs(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

/**
 * Typed GHL API client. Every call names its installation; the token comes from that
 * installation only, and the call waits for that installation's rate-limit slot in its lane.
 * 401 → one refresh and one retry; 429 → wait as GHL says, then retry; 5xx/network → bounded
 * backoff with jitter, but non-idempotent POSTs are only repeated when GHL cannot have applied
 * them (429, connection refused) or after `verify` found no effect.
 */
export function createGhlClient(o: GhlClientOptions) {
  const base = o.apiBase.replace(/\/+$/, '');
  const timeoutMs = o.timeoutMs ?? 30_000;
  const maxRetries = o.maxRetries ?? 4;
  const max429 = o.max429 ?? 20;
  const backoffBase = o.backoffBaseMs ?? 250;

  const backoff = (attempt: number) => {
    const exp = Math.min(15_000, backoffBase * 2 ** attempt);
    return exp / 2 + Math.random() * (exp / 2);
  };
  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(signal.reason);
        },
        { once: true },
      );
    });

  async function call<R>(op: Op, c: CallOptions): Promise<R> {
    const ref = c.installation;
    const resource = resourceOf(ref);
    if (!resource) throw new Error(`${op.name}: call without an installation`);
    const lane = c.lane ?? 'live';
    const version = versionFor(op.path);
    let token = await o.tokens.getToken(ref, c.signal);
    let refreshed = false;
    let retries = 0;
    let n429 = 0;
    for (;;) {
      let ticket: RateTicket;
      try {
        ticket = await o.limiter.acquire(resource, lane, c.signal, c.maxWaitMs);
      } catch (e) {
        if (e instanceof RateLimitWaitTimeout)
          throw new RetryLaterError(e.waitedMs, `${op.name}: waiting for the GHL rate limit of ${resource}`);
        throw e;
      }
      const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
      if (version) headers.Version = version;
      let body: string | undefined;
      if (op.form) {
        headers['Content-Type'] = 'application/x-www-form-urlencoded';
        body = new URLSearchParams(op.form).toString();
      } else if (op.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(op.body);
      }
      const started = Date.now();
      let res: Response;
      let text: string;
      let bin: Buffer | undefined;
      try {
        // The deadline covers the body too: a peer that sends headers and then stalls is cut as well.
        [res, text, bin] = await withDeadline(timeoutMs, c.signal, async (signal) => {
          const r = await fetch(base + op.path + qs(op.query), { method: op.method, headers, body, signal });
          if (op.binary === 'stream' && r.ok && r.body) return [r, '', undefined] as const;
          if (op.binary && r.ok) return [r, '', Buffer.from(await r.arrayBuffer())] as const;
          return [r, await r.text(), undefined] as const;
        });
      } catch (e) {
        ticket.done();
        if (c.signal?.aborted) throw e;
        o.metrics?.request(op.name, 0, Date.now() - started);
        // Connection refused/reset before a response: the request may (reset, timeout) or may not (refused) have arrived.
        const code = (e as { cause?: { code?: string } }).cause?.code;
        const notSent = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
        const err = new GhlApiError(0, (e as Error).message, undefined, undefined, op.name, !op.idempotent && !notSent);
        if (retries >= maxRetries) throw err;
        if (!op.idempotent && !notSent) {
          if (!op.verify) throw err;
          const found = await op.verify().catch(() => undefined);
          if (found) return found as R;
        }
        await sleep(backoff(retries++), c.signal);
        continue;
      }
      ticket.done();
      if (op.binary === 'stream' && res.ok && res.body) {
        o.metrics?.request(op.name, res.status, Date.now() - started);
        await o.limiter
          .observe(resource, res.status, res.headers)
          .catch((e: unknown) => o.log.warn({ err: e }, 'rate limiter: observe failed'));
        const len = Number(res.headers.get('content-length'));
        return {
          contentType: res.headers.get('content-type') ?? 'application/octet-stream',
          contentLength: Number.isSafeInteger(len) && len >= 0 && res.headers.has('content-length') ? len : null,
          body: res.body,
        } as R;
      }
      if (bin) {
        o.metrics?.request(op.name, res.status, Date.now() - started);
        await o.limiter
          .observe(resource, res.status, res.headers)
          .catch((e: unknown) => o.log.warn({ err: e }, 'rate limiter: observe failed'));
        return { contentType: res.headers.get('content-type') ?? 'application/octet-stream', data: bin } as R;
      }
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* non-JSON error page */
      }
      o.metrics?.request(op.name, res.status, Date.now() - started);
      await o.limiter
        .observe(resource, res.status, res.headers)
        .catch((e: unknown) => o.log.warn({ err: e }, 'rate limiter: observe failed'));
      if (res.ok) return parsed as R;
      const err = new GhlApiError(
        res.status,
        ghlMessage(parsed, res.statusText),
        traceIdOf(parsed, res.headers),
        parsed,
        op.name,
        res.status >= 500 && !op.idempotent,
      );
      if (res.status === 401 && !refreshed) {
        refreshed = true;
        token = await o.tokens.refreshAfter401(ref, token, c.signal);
        continue;
      }
      if (res.status === 429) {
        // GHL rejected it outright, so even a non-idempotent call is safe to repeat; the limiter now holds the resource.
        if (++n429 > max429) throw err;
        o.log.info({ op: op.name, resource, attempt: n429 }, 'GHL 429; waiting for the rate window');
        continue;
      }
      if (res.status >= 500 && retries < maxRetries) {
        if (!op.idempotent) {
          if (!op.verify) throw err;
          const found = await op.verify().catch(() => undefined);
          if (found) return found as R;
        }
        o.log.warn(
          { op: op.name, status: res.status, traceId: err.traceId, attempt: retries + 1 },
          'GHL server error; retrying',
        );
        await sleep(backoff(retries++), c.signal);
        continue;
      }
      throw err;
    }
  }

  const client = {
    contacts: {
      /** Upsert by GHL's duplicate rules (email/phone): idempotent by natural key. */
      upsert: (body: T.UpsertContactBody, c: CallOptions) =>
        call<T.UpsertContactResponse>(
          { name: 'contacts.upsert', method: 'POST', path: '/contacts/upsert', body, idempotent: true },
          c,
        ),
      /** Not idempotent (GHL may answer 400 for a duplicate); callers verify by searching on a unique custom field. */
      create: (body: T.CreateContactBody, c: CallOptions & { verify?: () => Promise<unknown> }) =>
        call<T.CreateContactResponse>(
          {
            name: 'contacts.create',
            method: 'POST',
            path: '/contacts/',
            body,
            idempotent: false,
            ...(c.verify ? { verify: c.verify } : {}),
          },
          c,
        ),
      get: (contactId: string, c: CallOptions) =>
        call<T.GetContactResponse>(
          { name: 'contacts.get', method: 'GET', path: `/contacts/${enc(contactId)}`, idempotent: true },
          c,
        ),
      search: (body: T.SearchContactsBody, c: CallOptions) =>
        call<T.SearchContactsResponse>(
          { name: 'contacts.search', method: 'POST', path: '/contacts/search', body, idempotent: true },
          c,
        ),
      /** PUT /contacts/{id}: a partial update (fields absent from the body are left alone). Idempotent. */
      update: (contactId: string, body: T.UpdateContactBody, c: CallOptions) =>
        call<T.UpdateContactResponse>(
          { name: 'contacts.update', method: 'PUT', path: `/contacts/${enc(contactId)}`, body, idempotent: true },
          c,
        ),
      /** POST /contacts/{id}/tags: adds tags (set semantics, so idempotent). */
      addTags: (contactId: string, tags: string[], c: CallOptions) =>
        call<T.TagsResponse>(
          {
            name: 'contacts.addTags',
            method: 'POST',
            path: `/contacts/${enc(contactId)}/tags`,
            body: { tags },
            idempotent: true,
          },
          c,
        ),
      /** DELETE /contacts/{id}/tags: removes tags (idempotent). */
      removeTags: (contactId: string, tags: string[], c: CallOptions) =>
        call<T.TagsResponse>(
          {
            name: 'contacts.removeTags',
            method: 'DELETE',
            path: `/contacts/${enc(contactId)}/tags`,
            body: { tags },
            idempotent: true,
          },
          c,
        ),
      /** The contact GHL's duplicate rules match for this email / phone (`contact` null when none). */
      findDuplicate: (query: T.DuplicateContactQuery, c: CallOptions) =>
        call<T.DuplicateContactResponse>(
          {
            name: 'contacts.findDuplicate',
            method: 'GET',
            path: '/contacts/search/duplicate',
            query,
            idempotent: true,
          },
          c,
        ),
      /** All contacts matching `body` (searchAfter pagination). */
      async *iterate(
        body: Omit<T.SearchContactsBody, 'page' | 'searchAfter'>,
        c: CallOptions & { pageLimit?: number },
      ) {
        let searchAfter: Array<string | number> | undefined;
        for (;;) {
          const page = await client.contacts.search(
            { ...body, pageLimit: c.pageLimit ?? 100, ...(searchAfter ? { searchAfter } : {}) },
            c,
          );
          const rows = page.contacts ?? [];
          for (const r of rows) yield r;
          const last = rows.at(-1);
          if (!last?.searchAfter || rows.length < (c.pageLimit ?? 100)) return;
          searchAfter = last.searchAfter;
        }
      },
    },
    locations: {
      /** GET /locations/{id}: the sub-account (country, settings such as allowDuplicateContact where GHL sends them). */
      get: (locationId: string, c: CallOptions) =>
        call<T.GetLocationResponse>(
          { name: 'locations.get', method: 'GET', path: `/locations/${enc(locationId)}`, idempotent: true },
          c,
        ),
    },
    customFields: {
      list: (locationId: string, c: CallOptions & { model?: 'contact' | 'opportunity' | 'all' }) =>
        call<T.CustomFieldsListResponse>(
          {
            name: 'customFields.list',
            method: 'GET',
            path: `/locations/${enc(locationId)}/customFields`,
            query: c.model ? { model: c.model } : undefined,
            idempotent: true,
          },
          c,
        ),
      /** Not idempotent; after an ambiguous failure it looks the field up by name before giving up. */
      create: (locationId: string, body: T.CreateCustomFieldBody, c: CallOptions) =>
        call<T.CreateCustomFieldResponse>(
          {
            name: 'customFields.create',
            method: 'POST',
            path: `/locations/${enc(locationId)}/customFields`,
            body,
            idempotent: false,
            verify: async () => {
              const l = (await client.customFields.list(locationId, c)) as { customFields?: Array<{ name?: string }> };
              const f = l.customFields?.find((x) => x.name === (body as { name?: string }).name);
              return f ? { customField: f } : undefined;
            },
          },
          c,
        ),
    },
    conversations: {
      search: (query: T.SearchConversationsQuery, c: CallOptions) =>
        call<T.SearchConversationsResponse>(
          { name: 'conversations.search', method: 'GET', path: '/conversations/search', query, idempotent: true },
          c,
        ),
      async *iterate(query: Omit<T.SearchConversationsQuery, 'startAfterDate'>, c: CallOptions) {
        let startAfterDate: number | undefined;
        const limit = query.limit ?? 100;
        for (;;) {
          const page = await client.conversations.search(
            { ...query, limit, ...(startAfterDate !== undefined ? { startAfterDate } : {}) },
            c,
          );
          const rows = (page.conversations ?? []) as Array<T.Conversation & { lastMessageDate?: number }>;
          for (const r of rows) yield r;
          const last = rows.at(-1);
          if (rows.length < limit || last?.lastMessageDate === undefined) return;
          startAfterDate = Number(last.lastMessageDate);
        }
      },
      /** Not idempotent (GHL answers 400 when one exists); after an ambiguous failure it searches first. */
      create: (body: T.CreateConversationBody, c: CallOptions) =>
        call<T.CreateConversationResponse>(
          {
            name: 'conversations.create',
            method: 'POST',
            path: '/conversations/',
            body,
            idempotent: false,
            verify: async () => {
              const b = body as { locationId: string; contactId: string };
              const r = await client.conversations.search(
                { locationId: b.locationId, contactId: b.contactId, limit: 1 },
                c,
              );
              const hit = r.conversations?.[0];
              return hit ? { success: true, conversation: hit } : undefined;
            },
          },
          c,
        ),
      get: (conversationId: string, c: CallOptions) =>
        call<T.GetConversationResponse>(
          { name: 'conversations.get', method: 'GET', path: `/conversations/${enc(conversationId)}`, idempotent: true },
          c,
        ),
    },
    liveChat: {
      /** POST /conversations/providers/live-chat/typing: the agent typing indicator of a live chat (idempotent). */
      typing: (body: T.LiveChatTypingBody, c: CallOptions) =>
        call<T.LiveChatTypingResponse>(
          {
            name: 'liveChat.typing',
            method: 'POST',
            path: '/conversations/providers/live-chat/typing',
            body,
            idempotent: true,
          },
          c,
        ),
    },
    messages: {
      /** Not idempotent and not verifiable: an ambiguous failure surfaces as GhlApiError.maybeApplied. */
      send: (body: T.SendMessageBody, c: CallOptions) =>
        call<T.SendMessageResponse>(
          { name: 'messages.send', method: 'POST', path: '/conversations/messages', body, idempotent: false },
          c,
        ),
      addInbound: (body: T.InboundMessageBody, c: CallOptions & { verify?: () => Promise<unknown> }) =>
        call<T.InboundMessageResponse>(
          {
            name: 'messages.addInbound',
            method: 'POST',
            path: '/conversations/messages/inbound',
            body,
            idempotent: false,
            ...(c.verify ? { verify: c.verify } : {}),
          },
          c,
        ),
      addOutboundCall: (body: T.OutboundCallBody, c: CallOptions & { verify?: () => Promise<unknown> }) =>
        call<T.OutboundCallResponse>(
          {
            name: 'messages.addOutboundCall',
            method: 'POST',
            path: '/conversations/messages/outbound',
            body,
            idempotent: false,
            ...(c.verify ? { verify: c.verify } : {}),
          },
          c,
        ),
      /** Setting a status is idempotent (same status twice is harmless). */
      updateStatus: (messageId: string, body: T.UpdateMessageStatusBody, c: CallOptions) =>
        call<T.UpdateMessageStatusResponse>(
          {
            name: 'messages.updateStatus',
            method: 'PUT',
            path: `/conversations/messages/${enc(messageId)}/status`,
            body,
            idempotent: true,
          },
          c,
        ),
      /** One page; accepts both the wrapped ({messages:{…}}) and the spec's flat shape. */
      async list(conversationId: string, query: T.ListMessagesQuery, c: CallOptions): Promise<T.MessagesPage> {
        const r = await call<T.MessagesPage | { messages: T.MessagesPage }>(
          {
            name: 'messages.list',
            method: 'GET',
            path: `/conversations/${enc(conversationId)}/messages`,
            query,
            idempotent: true,
          },
          c,
        );
        const m = (r as { messages?: unknown }).messages;
        return (m && !Array.isArray(m) ? m : r) as T.MessagesPage;
      },
      async *iterate(conversationId: string, query: Omit<T.ListMessagesQuery, 'lastMessageId'>, c: CallOptions) {
        let lastMessageId: string | undefined;
        for (;;) {
          const page = await client.messages.list(
            conversationId,
            { ...query, ...(lastMessageId ? { lastMessageId } : {}) },
            c,
          );
          for (const m of page.messages ?? []) yield m;
          if (!page.nextPage || !page.lastMessageId) return;
          lastMessageId = page.lastMessageId;
        }
      },
      /** One page of the location's messages (cursor-paginated; `nextCursor` absent or null on the last page). */
      export: (query: T.ExportMessagesQuery, c: CallOptions) =>
        call<T.ExportMessagesResponse>(
          { name: 'messages.export', method: 'GET', path: '/conversations/messages/export', query, idempotent: true },
          c,
        ),
      get: (messageId: string, c: CallOptions) =>
        call<T.GetMessageResponse>(
          { name: 'messages.get', method: 'GET', path: `/conversations/messages/${enc(messageId)}`, idempotent: true },
          c,
        ),
      /** The call recording of a message (binary audio, audio/x-wav). */
      recording: (locationId: string, messageId: string, c: CallOptions) =>
        call<BinaryBody>(
          {
            name: 'messages.recording',
            method: 'GET',
            path: `/conversations/messages/${enc(messageId)}/locations/${enc(locationId)}/recording`,
            idempotent: true,
            binary: true,
          },
          c,
        ),
      /** The same recording, not read yet: streamed through to a caller without holding the file. */
      recordingStream: (locationId: string, messageId: string, c: CallOptions) =>
        call<BinaryStream>(
          {
            name: 'messages.recording',
            method: 'GET',
            path: `/conversations/messages/${enc(messageId)}/locations/${enc(locationId)}/recording`,
            idempotent: true,
            binary: 'stream',
          },
          c,
        ),
      /** The transcript of a call message: its sentences (404 while GHL has not produced it). */
      transcription: (locationId: string, messageId: string, c: CallOptions) =>
        call<unknown>(
          {
            name: 'messages.transcription',
            method: 'GET',
            path: `/conversations/locations/${enc(locationId)}/messages/${enc(messageId)}/transcription`,
            idempotent: true,
          },
          c,
        ),
    },
    opportunities: {
      pipelines: (locationId: string, c: CallOptions) =>
        call<T.GetPipelinesResponse>(
          {
            name: 'opportunities.pipelines',
            method: 'GET',
            path: '/opportunities/pipelines',
            query: { locationId },
            idempotent: true,
          },
          c,
        ),
      get: (id: string, c: CallOptions) =>
        call<T.OpportunityResponse>(
          { name: 'opportunities.get', method: 'GET', path: `/opportunities/${enc(id)}`, idempotent: true },
          c,
        ),
      search: (query: T.SearchOpportunitiesQuery, c: CallOptions) =>
        call<T.SearchOpportunitiesResponse>(
          { name: 'opportunities.search', method: 'GET', path: '/opportunities/search', query, idempotent: true },
          c,
        ),
      /** Not idempotent; `verify` looks for the effect after an ambiguous failure (the caller knows what to look for). */
      create: (body: T.CreateOpportunityBody, c: CallOptions & { verify?: () => Promise<unknown> }) =>
        call<T.OpportunityResponse>(
          {
            name: 'opportunities.create',
            method: 'POST',
            path: '/opportunities/',
            body,
            idempotent: false,
            ...(c.verify ? { verify: c.verify } : {}),
          },
          c,
        ),
      /** Setting fields to values is idempotent. */
      update: (id: string, body: T.UpdateOpportunityBody, c: CallOptions) =>
        call<T.OpportunityResponse>(
          { name: 'opportunities.update', method: 'PUT', path: `/opportunities/${enc(id)}`, body, idempotent: true },
          c,
        ),
      updateStatus: (id: string, body: T.UpdateOpportunityStatusBody, c: CallOptions) =>
        call<T.OpportunitySucceeded>(
          {
            name: 'opportunities.updateStatus',
            method: 'PUT',
            path: `/opportunities/${enc(id)}/status`,
            body,
            idempotent: true,
          },
          c,
        ),
      delete: (id: string, c: CallOptions) =>
        call<T.OpportunitySucceeded>(
          { name: 'opportunities.delete', method: 'DELETE', path: `/opportunities/${enc(id)}`, idempotent: true },
          c,
        ),
    },
    oauth: {
      /** Mints a location token from the company installation (form-encoded, per spec). */
      async locationToken(
        body: { companyId: string; locationId: string },
        c: CallOptions,
      ): Promise<T.LocationTokenResponse> {
        const r = await call<T.LocationTokenResponse>(
          { name: 'oauth.locationToken', method: 'POST', path: '/oauth/locationToken', form: body, idempotent: true },
          c,
        );
        registerSecret((r as { access_token?: string }).access_token);
        return r;
      },
      installedLocations: (query: T.InstalledLocationsQuery, c: CallOptions) =>
        call<T.InstalledLocationsResponse>(
          {
            name: 'oauth.installedLocations',
            method: 'GET',
            path: '/oauth/installedLocations',
            query,
            idempotent: true,
          },
          c,
        ),
      /** All installed locations of a company (skip/limit pagination). */
      async *iterateInstalled(query: Omit<T.InstalledLocationsQuery, 'skip' | 'limit'>, c: CallOptions) {
        const limit = 100;
        for (let skip = 0; ; skip += limit) {
          const page = await client.oauth.installedLocations({ ...query, skip: String(skip), limit: String(limit) }, c);
          const rows = page.locations ?? [];
          for (const l of rows) yield l;
          if (rows.length < limit) return;
        }
      },
    },
  };
  return client;
}

export type GhlClient = ReturnType<typeof createGhlClient>;

/**
 * POST /oauth/token (form-encoded; no Authorization, no Version, not rate limited). Used for the
 * code exchange and refreshes. Registers the returned tokens for log scrubbing.
 */
export async function oauthToken(
  apiBase: string,
  form: Record<string, string>,
  timeoutMs = 30_000,
): Promise<T.TokenResponse> {
  const [res, text] = await withDeadline(timeoutMs, undefined, async (signal) => {
    const r = await fetch(apiBase.replace(/\/+$/, '') + '/oauth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      signal,
    });
    return [r, await r.text()] as const;
  });
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* keep text */
  }
  if (!res.ok)
    throw new GhlApiError(
      res.status,
      ghlMessage(body, res.statusText),
      traceIdOf(body, res.headers),
      body,
      'oauth.token',
    );
  const t = body as T.TokenResponse;
  registerSecret(t.access_token);
  registerSecret(t.refresh_token);
  return t;
}
