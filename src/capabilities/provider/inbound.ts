import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ChannelInputError, normalizeE164, type InboundMessage } from '../channels/index.js';
import type { Db } from '../../infra/db/index.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import type { InboundMessageBody } from '../../platform/ghl/types.js';
import { errorBody } from '../../infra/http/errors.js';
import { apiErrorSchema, locationIdParams } from '../../infra/http/schemas.js';
import type { Logger } from '../../infra/log/logger.js';
import { defineJob, PRIORITY, type DbOrTrx, type JobContext } from '../../infra/queue/index.js';
import type { ChannelCache, StoredChannel } from './channels.js';
import { applyStatus } from './outbound.js';
import './tables.js';
import { locationKey, orderingKeys } from '../../platform/keys.js';

export const JOB_INBOUND = 'provider.inbound';
export const INBOUND_PATH = '/channels/:locationId/inbound';

export interface InboundRuntime {
  db: Db;
  log: Logger;
  ghl: () => GhlClient;
  channels: ChannelCache;
  /** GHL_CONVERSATION_PROVIDER_ID (a channel row may override it). */
  conversationProviderId: string | undefined;
  isKnownLocation: (locationId: string) => Promise<boolean>;
  notify: () => void;
}

export class InboundAddressError extends Error {
  override name = 'InboundAddressError';
}

/**
 * The key a sender is known by within a location: "contact:<id>" when the channel names the GHL contact, a lower-case
 * e-mail address, or the E.164 phone (national numbers parsed with the location's default region).
 */
export function senderAddress(m: InboundMessage, region: string): string {
  if (m.contactId) return `contact:${m.contactId}`;
  const from = m.from.trim();
  if (from.includes('@')) return from.toLowerCase();
  const r = normalizeE164(from, region);
  if (!r.ok) throw new InboundAddressError(`from: ${r.error.message}`);
  return r.e164;
}

const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;

/**
 * Stores inbound messages (deduped on the channel's id per location) and enqueues their processing, in the caller's
 * transaction. Jobs of one sender share an ordering key, which is also the concurrency guard for creating the
 * sender's contact and conversation: they run one at a time, so 20 simultaneous messages from an unknown number
 * create one contact.
 */
export async function storeInbound(
  trx: DbOrTrx,
  locationId: string,
  items: Array<{ msg: InboundMessage; address: string }>,
): Promise<{ accepted: number; duplicates: number }> {
  let accepted = 0;
  for (const { msg, address } of items) {
    const ins = await trx
      .insertInto('provider_inbound')
      .values({ location_id: locationId, channel_message_id: msg.channelMessageId, address, message: json(msg) })
      .onConflict((oc) => oc.columns(['location_id', 'channel_message_id']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!ins) continue;
    accepted++;
    await inboundJob.enqueue(
      trx,
      { id: Number(ins.id) },
      { orderingKey: orderingKeys.inboundSender(locationId, address), scope: locationKey(locationId) },
    );
  }
  return { accepted, duplicates: items.length - accepted };
}

const UNAUTHORIZED =
  'missing or invalid credentials for this location (or no channel is configured for it); nothing was stored';

/**
 * Answers of the channel inbound endpoint. Errors are in the bridge's one shape with a stable code in `error`
 * (`unauthorized`, `invalid_body`, `location_not_installed`, `channel_config_unreadable`) a channel can act on:
 * 400 → do not retry, 401 → fix the credentials, 5xx → retry with the same message id.
 */
const inboundAccepted = z.object({
  ok: z.literal(true),
  accepted: z.number().int().describe('new messages stored'),
  duplicates: z.number().int().describe('messages already stored (same channel message id)'),
  receipts: z.number().int().describe('delivery receipts applied'),
  unmatchedReceipts: z.number().int().describe('receipts naming no message the bridge sent'),
});

export function registerInboundRoutes(app: FastifyInstance, rt: InboundRuntime): void {
  // Raw bytes: channels sign them (the HTTP channel's Standard Webhooks signature), so the adapter parses after
  // verifying; the schema below only describes the body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.withTypeProvider<ZodTypeProvider>().post(
    INBOUND_PATH,
    {
      schema: {
        tags: ['channels'],
        summary: 'Inbound messages and delivery receipts from the channel of a location',
        description:
          'Authenticated by the channel (Cast: Bearer or X-API-Key inboundApiKey; HTTP channel: Standard Webhooks ' +
          'signature over the raw body). The body format is the channel’s (src/capabilities/channels/*_CONTRACT.md).',
        params: locationIdParams,
        body: z.unknown().describe('the channel’s payload (JSON, or a form for Cast); verified over the raw bytes'),
        response: {
          202: inboundAccepted,
          400: apiErrorSchema,
          401: apiErrorSchema,
          500: apiErrorSchema,
          503: apiErrorSchema,
        },
      },
    },
    async (req, reply) => {
      const { locationId } = req.params;
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const fail = (status: 400 | 401 | 500 | 503, errorCode: string, message: string) =>
        reply.code(status).send(errorBody(req.id, status, message, { errorCode }));
      const ch = await rt.channels.get(locationId).catch((e: unknown) => {
        req.log.error({ err: e, locationId }, 'channel config of the location cannot be opened');
        return null;
      });
      if (ch === null)
        return fail(
          500,
          'channel_config_unreadable',
          'the channel configuration of this location cannot be read; nothing was stored, retry later',
        );
      // A location without a channel answers exactly like bad credentials, so the endpoint does not reveal which
      // locations have a channel; the precise reason is in the log.
      const headers = req.headers as Record<string, string | string[] | undefined>;
      const v = ch
        ? ch.adapter.verifyInbound({ headers, rawBody: raw })
        : { ok: false as const, reason: 'no channel is configured for this location' };
      if (!ch || !v.ok) {
        req.log.info({ locationId, reason: v.ok ? undefined : v.reason }, 'inbound request not authenticated');
        reply.header('www-authenticate', 'Bearer');
        return fail(401, 'unauthorized', UNAUTHORIZED);
      }
      // Authenticated; now: do we act for this location? If not, refuse so the sender keeps the message and retries.
      if (!ch.channel.enabled || !(await rt.isKnownLocation(locationId))) {
        reply.header('retry-after', '300');
        return fail(
          503,
          'location_not_installed',
          `ghl-bridge is not installed on location ${locationId} (or its channel is disabled); nothing was stored — retry later`,
        );
      }
      let parsed;
      try {
        parsed = ch.adapter.parseInbound({ headers, rawBody: raw });
      } catch (e) {
        if (e instanceof ChannelInputError) return fail(400, 'invalid_body', e.message);
        throw e;
      }
      const items: Array<{ msg: InboundMessage; address: string }> = [];
      try {
        for (const msg of parsed.messages) items.push({ msg, address: senderAddress(msg, ch.channel.defaultRegion) });
      } catch (e) {
        if (e instanceof InboundAddressError) return fail(400, 'invalid_body', e.message);
        throw e;
      }
      let receipts = 0;
      const res = await rt.db.transaction().execute(async (trx) => {
        const r = await storeInbound(trx, locationId, items);
        for (const rc of parsed.receipts) {
          if (
            await applyStatus(
              trx,
              { locationId, ghlMessageId: rc.ghlMessageId, channelMessageId: rc.channelMessageId },
              rc.status,
              rc.error,
            )
          )
            receipts++;
        }
        return r;
      });
      rt.notify();
      return reply.code(202).send({
        ok: true as const,
        accepted: res.accepted,
        duplicates: res.duplicates,
        receipts,
        unmatchedReceipts: parsed.receipts.length - receipts,
      });
    },
  );
}

export async function findOrCreateConversation(
  ghl: GhlClient,
  locationId: string,
  contactId: string,
  signal: AbortSignal,
): Promise<string> {
  const opts = { installation: { locationId }, lane: 'live' as const, signal };
  const search = async () => {
    const r = await ghl.conversations.search({ locationId, contactId, limit: 1 }, opts);
    return (r.conversations ?? [])[0]?.id;
  };
  const found = await search();
  if (found) return found;
  try {
    const r = await ghl.conversations.create({ locationId, contactId }, opts);
    const id = r.conversation?.id;
    if (id) return id;
  } catch (e) {
    // "Conversation already exists" (one per contact): the answer may name it; otherwise search again.
    if (!(e instanceof GhlApiError) || e.status !== 400) throw e;
    const b = e.body as { conversationId?: string } | undefined;
    if (b?.conversationId) return b.conversationId;
    const again = await search();
    if (again) return again;
    throw e;
  }
  const again = await search();
  if (again) return again;
  throw new Error('conversation create answered without an id');
}

/**
 * `provider.inbound`: resolve (or create) the sender's contact and conversation, then Add Inbound Message with
 * `direction: inbound`, the provider's conversationProviderId and the attachments (docs/ghl-behaviour.md#inbound-messages).
 * Runs once per sender at a time.
 */
export const inboundJob = defineJob<{ id: number }, InboundRuntime>({
  kind: JOB_INBOUND,
  // The sender's ordering key and the location's scope are given when it is enqueued (storeInbound): the payload
  // carries only the row id, so the sender's address stays out of it.
  payload: z.object({ id: z.number().int() }),
  priority: PRIORITY.live,
  maxAttempts: 15,
  perform: (p, _job, h) => addInbound(h.deps, p.id, h),
  // The queue gave up: the message is failed (the reason is the last attempt's, recorded by addInbound).
  onFailed: async (p, _job, _err, h) => {
    await h.db
      .updateTable('provider_inbound')
      .set({ state: 'failed', updated_at: sql`now()` })
      .where('id', '=', p.id)
      .where('state', '=', 'received')
      .execute();
  },
});

async function addInbound(rt: InboundRuntime, id: number, h: JobContext<InboundRuntime>): Promise<void> {
  const { db } = rt;
  const row = await db.selectFrom('provider_inbound').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || row.state !== 'received') return;
  const m = row.message;
  const loc = row.location_id;
  const ghl = rt.ghl();
  const opts = { installation: { locationId: loc }, lane: 'live' as const, signal: h.signal };
  await db
    .updateTable('provider_inbound')
    .set({ attempts: sql`attempts + 1`, updated_at: sql`now()` })
    .where('id', '=', row.id)
    .execute();
  let ch: StoredChannel | undefined;
  try {
    ch = (await rt.channels.get(loc))?.channel;
  } catch {
    ch = undefined;
  }

  try {
    let map = await db
      .selectFrom('provider_contacts')
      .selectAll()
      .where('location_id', '=', loc)
      .where('address', '=', row.address)
      .executeTakeFirst();
    let contactId = map?.contact_id;
    if (!contactId) {
      if (m.contactId) contactId = m.contactId;
      else {
        const body = row.address.includes('@')
          ? { locationId: loc, email: row.address }
          : { locationId: loc, phone: row.address };
        const r = await ghl.contacts.upsert({ ...body, source: 'ghl-bridge' }, opts);
        contactId = r.contact?.id;
        if (!contactId) throw new Error('contact upsert answered without a contact id');
      }
      await db
        .insertInto('provider_contacts')
        .values({ location_id: loc, address: row.address, contact_id: contactId })
        .onConflict((oc) =>
          oc
            .columns(['location_id', 'address'])
            .doUpdateSet({ contact_id: contactId!, conversation_id: null, updated_at: sql`now()` }),
        )
        .execute();
      map = undefined;
    }
    let conversationId = map?.conversation_id ?? null;
    if (!conversationId) {
      conversationId = await findOrCreateConversation(ghl, loc, contactId, h.signal);
      await db
        .updateTable('provider_contacts')
        .set({ conversation_id: conversationId, updated_at: sql`now()` })
        .where('location_id', '=', loc)
        .where('address', '=', row.address)
        .execute();
    }

    const providerId = ch?.conversationProviderId ?? rt.conversationProviderId;
    const type = m.channel === 'Email' && ch?.emailInboundType === 'Custom' ? 'Custom' : m.channel;
    const body: InboundMessageBody = {
      type,
      conversationId,
      contactId,
      direction: 'inbound',
      attachments: m.attachments ?? [],
    };
    if (providerId) body.conversationProviderId = providerId;
    if (m.text !== undefined) body.message = m.text;
    if (m.html !== undefined) body.html = m.html;
    if (m.subject !== undefined) body.subject = m.subject;
    if (m.receivedAt) body.date = m.receivedAt;
    body.altId = m.conversationRef ?? m.channelMessageId;
    if (type !== 'SMS' && m.from.includes('@')) body.emailFrom = m.from;
    let res;
    try {
      res = await ghl.messages.addInbound(body, opts);
    } catch (e) {
      // A remembered conversation (or contact) deleted in GHL: forget the mapping and resolve again on retry.
      if (e instanceof GhlApiError && e.status === 400 && /conversation|contact/i.test(e.message) && map) {
        await db
          .deleteFrom('provider_contacts')
          .where('location_id', '=', loc)
          .where('address', '=', row.address)
          .execute();
      }
      throw e;
    }
    const ghlMessageId = res.messageId ?? null;
    await db
      .updateTable('provider_inbound')
      .set({
        state: 'done',
        contact_id: contactId,
        conversation_id: conversationId,
        ghl_message_id: ghlMessageId,
        last_error: null,
        updated_at: sql`now()`,
      })
      .where('id', '=', row.id)
      .execute();
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).slice(0, 1000);
    await db
      .updateTable('provider_inbound')
      .set({ last_error: reason, updated_at: sql`now()` })
      .where('id', '=', row.id)
      .execute();
    throw e;
  }
}
