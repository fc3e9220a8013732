import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext } from '../../app.js';
import '../../platform/apikeys/index.js';
import { normalizeE164 } from '../channels/index.js';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, idString } from '../../infra/http/schemas.js';
import {
  chatTypeFor,
  type ChatMessageType,
  ChatConflictError,
  storeMessages,
  storeStatus,
  typingJob,
  type ClientInput,
  type MessageInput,
} from './sync.js';

/** Longest text of one message (GHL's own message bodies are far shorter); larger is a 400 naming the field. */
export const MAX_TEXT = 32_768;
/** Messages in one history push. */
export const MAX_HISTORY = 500;
/** These routes accept larger bodies than BODY_LIMIT_BYTES so an oversized text is named, not a bare 413. */
const ROUTE_BODY_LIMIT = 16 * 1024 * 1024;

const extId = z
  .string()
  .min(1, 'expected a non-empty id')
  .max(256, 'expected at most 256 characters')
  .regex(/^\S+$/, 'expected an id without whitespace');

const clientSchema = z
  .object({
    externalId: extId.describe('the chat product’s client id (vCX clientId)'),
    name: z.string().min(1).max(200).optional(),
    email: z.email('expected an e-mail address').max(320).optional(),
    phone: z.string().min(3).max(40).optional().describe('E.164 preferred; national numbers are read as US'),
  })
  .meta({ id: 'ChatClient' });

const isoDate = z.iso
  .datetime({ offset: true, message: 'expected an ISO 8601 date-time with a time zone, e.g. 2026-05-01T08:00:00Z' })
  // Not for unparseable input: the format check above already names that.
  .refine((s) => !(Date.parse(s) > Date.now() + 5 * 60_000), 'expected a time that is not in the future');

const messageSchema = z
  .object({
    externalId: extId.describe('the chat product’s message id; every write is idempotent on it'),
    direction: z.enum(['inbound', 'outbound']).describe('inbound = from the customer, outbound = from an agent'),
    text: z.string().max(MAX_TEXT, `expected at most ${MAX_TEXT} characters`).optional(),
    attachments: z
      .array(z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }))
      .max(20)
      .default([]),
    sentAt: isoDate.describe('when it was sent in the chat product (kept as the GHL message date)'),
    author: z.object({ id: z.string().max(256).optional(), name: z.string().max(200).optional() }).optional(),
  })
  .refine((m) => (m.text !== undefined && m.text.length > 0) || m.attachments.length > 0, {
    message: 'expected text or at least one attachment',
    path: ['text'],
  })
  .meta({ id: 'ChatMessage' });

const pushBody = z.object({
  conversationId: extId.describe('the chat product’s conversation (thread) id'),
  client: clientSchema,
  message: messageSchema,
});
const historyBody = z.object({
  conversationId: extId,
  client: clientSchema,
  messages: z.array(messageSchema).min(1).max(MAX_HISTORY).describe('oldest first; posted in this order'),
});
const statusBody = z
  .object({
    messageId: extId.optional().describe('the chat product’s id of a message it pushed'),
    ghlMessageId: idString.optional().describe('the GHL id of a reply the bridge delivered to the chat product'),
    status: z.enum(['delivered', 'read', 'failed']),
  })
  .refine((b) => (b.messageId ? !b.ghlMessageId : !!b.ghlMessageId), {
    message: 'expected exactly one of messageId and ghlMessageId',
    path: ['messageId'],
  });
const typingBody = z.object({ conversationId: extId, isTyping: z.boolean() });
const lookupQuery = z
  .object({
    messageId: extId.optional(),
    conversationId: extId.optional(),
    clientId: extId.optional(),
    ghlMessageId: idString.optional(),
    ghlContactId: idString.optional(),
  })
  .refine((q) => Object.values(q).filter(Boolean).length === 1, {
    message: 'expected exactly one of messageId, conversationId, clientId, ghlMessageId, ghlContactId',
    path: ['messageId'],
  });
const params = z.object({ locationId: idString.describe('GHL location id') });

const accepted = z.object({
  ok: z.literal(true),
  accepted: z.number().int().describe('messages stored now'),
  duplicates: z.number().int().describe('messages already stored (same external id): nothing changed'),
});
const lookupAnswer = z.object({
  locationId: z.string(),
  client: z
    .object({ externalId: z.string(), ghlContactId: z.string().nullable(), ghlConversationId: z.string().nullable() })
    .optional(),
  conversation: z.object({ externalId: z.string(), ghlConversationId: z.string().nullable() }).optional(),
  message: z
    .object({
      externalId: z.string(),
      conversationId: z.string(),
      ghlMessageId: z.string().nullable(),
      state: z.string(),
      status: z.string().nullable(),
    })
    .optional(),
  reply: z
    .object({
      ghlMessageId: z.string(),
      conversationId: z.string().describe('the external thread the reply was handed to'),
      via: z.enum(['provider', 'other_channel']),
      ghlChannel: z.string(),
      state: z.string(),
      channelMessageId: z.string().nullable(),
    })
    .optional()
    .describe('a GHL reply handed to the chat product (lookup by ghlMessageId)'),
});

export function registerChatRoutes(
  app: FastifyInstance,
  ctx: AppContext,
  notify: () => void,
  messageType: ChatMessageType,
): void {
  // API keys scoped to locations (src/platform/apikeys): 401 without a valid key, 403 for another location's.
  // Or, for chat products that sign: the Standard Webhooks signature of the location's HTTP channel (inboundSecret)
  // over the exact body bytes, kept by the JSON parser of this scope.
  const keyGuard = ctx.services
    .get('apiKeys')
    .requireLocation((req) => (req.params as { locationId?: string } | undefined)?.locationId);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    (req as { chatRawBody?: Buffer }).chatRawBody = body as Buffer;
    try {
      done(null, (body as Buffer).length ? JSON.parse((body as Buffer).toString('utf8')) : undefined);
    } catch {
      done(httpError(400, 'the body is not valid JSON', [{ path: 'body', message: 'expected JSON' }]), undefined);
    }
  });
  const guard = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.headers['webhook-signature'] === undefined) return keyGuard(req, reply);
    const loc = (req.params as { locationId?: string }).locationId ?? '';
    const raw = (req as { chatRawBody?: Buffer }).chatRawBody ?? Buffer.alloc(0);
    const ok = await ctx.services
      .get('provider')
      .verifyChannelSignature(loc, req.headers as Record<string, string | string[] | undefined>, raw);
    if (!ok) {
      reply.header('www-authenticate', 'Bearer');
      throw httpError(
        401,
        'invalid Standard Webhooks signature for this location’s HTTP channel (or no inboundSecret); nothing was stored',
        undefined,
        'unauthorized',
      );
    }
  };
  const db = ctx.db;
  const known = async (locationId: string) => {
    const k = ctx.services.find('knownLocations');
    if (!k || !(await k.isKnownLocation(locationId, null)))
      throw httpError(
        404,
        `ghl-bridge is not installed on location ${locationId}; nothing was stored`,
        [{ path: 'params.locationId', message: 'expected a location the bridge is installed on' }],
        'location_not_installed',
      );
  };
  const phoneOf = (c: z.infer<typeof clientSchema>, path: string): ClientInput => {
    let phone: string | undefined;
    if (c.phone !== undefined) {
      const r = normalizeE164(c.phone, 'US');
      if (!r.ok)
        throw httpError(400, `${path}.phone: ${r.error.message}`, [
          { path: `${path}.phone`, message: r.error.message },
        ]);
      phone = r.e164;
    }
    return { externalId: c.externalId, name: c.name, email: c.email?.toLowerCase(), phone };
  };
  const msgOf = (m: z.infer<typeof messageSchema>): MessageInput => ({
    externalId: m.externalId,
    direction: m.direction,
    text: m.text,
    attachments: m.attachments,
    sentAt: new Date(m.sentAt),
    author: m.author,
  });
  const store = async (
    locationId: string,
    conversationId: string,
    client: ClientInput,
    messages: MessageInput[],
    history: boolean,
  ) => {
    try {
      const r = await db
        .transaction()
        .execute((trx) => storeMessages(trx, locationId, conversationId, client, messages, history));
      if (r.accepted) notify();
      return { ok: true as const, accepted: r.accepted, duplicates: r.duplicates };
    } catch (e) {
      if (e instanceof ChatConflictError) throw httpError(409, e.message, [{ path: e.path, message: e.message }]);
      throw e;
    }
  };
  const z4 = app.withTypeProvider<ZodTypeProvider>();
  const base = '/v1/locations/:locationId/chat';
  const common = { tags: ['chat'], params };

  z4.post(
    `${base}/messages`,
    {
      bodyLimit: ROUTE_BODY_LIMIT,
      preValidation: guard,
      schema: {
        ...common,
        summary: 'Push one chat message (customer or agent) into the GHL conversation of its client',
        description:
          'Answers 202 once the message is stored; a job resolves the contact and conversation and posts it. ' +
          'Idempotent on message.externalId: a re-push is a duplicate and changes nothing.',
        body: pushBody,
        response: { 202: accepted, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      await known(req.params.locationId);
      const b = req.body;
      const r = await store(
        req.params.locationId,
        b.conversationId,
        phoneOf(b.client, 'body.client'),
        [msgOf(b.message)],
        false,
      );
      return reply.code(202).send(r);
    },
  );

  z4.post(
    `${base}/history`,
    {
      bodyLimit: ROUTE_BODY_LIMIT,
      preValidation: guard,
      schema: {
        ...common,
        summary: 'Push past messages of one conversation (oldest first), kept in order with their original dates',
        description: `1–${MAX_HISTORY} messages; posted in the given order on the bulk lane of the GHL rate limiter.`,
        body: historyBody,
        response: { 202: accepted, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      await known(req.params.locationId);
      const b = req.body;
      const ids = new Set<string>();
      b.messages.forEach((m, i) => {
        if (ids.has(m.externalId))
          throw httpError(400, `body.messages.${i}.externalId: duplicate id ${m.externalId} in the batch`, [
            { path: `body.messages.${i}.externalId`, message: 'expected ids unique within the batch' },
          ]);
        ids.add(m.externalId);
      });
      const r = await store(
        req.params.locationId,
        b.conversationId,
        phoneOf(b.client, 'body.client'),
        b.messages.map(msgOf),
        true,
      );
      return reply.code(202).send(r);
    },
  );

  z4.post(
    `${base}/status`,
    {
      preValidation: guard,
      schema: {
        ...common,
        summary: 'Read receipt / delivery status from the chat product → the GHL message status (forward-only)',
        body: statusBody,
        response: {
          202: z.object({ ok: z.literal(true), changed: z.boolean().describe('false: not ahead of the known status') }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) => {
      const loc = req.params.locationId;
      await known(loc);
      const b = req.body;
      if (b.messageId) {
        const r = await storeStatus(db, loc, b.messageId, b.status);
        if (r === 'unknown')
          throw httpError(404, `no message ${b.messageId} was pushed for this location`, [
            { path: 'body.messageId', message: 'expected the id of a message pushed to this location' },
          ]);
        if (r === 'stored') notify();
        return reply.code(202).send({ ok: true as const, changed: r === 'stored' });
      }
      const ok = await ctx.services.get('provider').applyReceipt(loc, b.ghlMessageId!, b.status);
      // A reply forwarded from another GHL channel: the bridge is not its provider, so GHL's status stays GHL's.
      if (!ok) {
        const other = await db
          .selectFrom('chat_replies')
          .select('ghl_message_id')
          .where('ghl_message_id', '=', b.ghlMessageId!)
          .where('location_id', '=', loc)
          .where('via', '=', 'other_channel')
          .executeTakeFirst();
        if (other) return reply.code(202).send({ ok: true as const, changed: false });
      }
      if (!ok)
        throw httpError(404, `the bridge delivered no message ${b.ghlMessageId} for this location`, [
          { path: 'body.ghlMessageId', message: 'expected the id of a reply the bridge delivered' },
        ]);
      return reply.code(202).send({ ok: true as const, changed: true });
    },
  );

  z4.post(
    `${base}/typing`,
    {
      preValidation: guard,
      schema: {
        ...common,
        summary: 'Agent typing indicator → GHL live chat (only for clients whose messages go into GHL as Live_Chat)',
        body: typingBody,
        response: {
          202: z.object({ ok: z.literal(true), forwarded: z.boolean() }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) => {
      const loc = req.params.locationId;
      await known(loc);
      const conv = await db
        .selectFrom('chat_conversations as v')
        .innerJoin('chat_clients as c', (j) =>
          j.onRef('c.location_id', '=', 'v.location_id').onRef('c.client_id', '=', 'v.client_id'),
        )
        .select(['v.client_id', 'c.phone', 'c.email'])
        .where('v.location_id', '=', loc)
        .where('v.conversation_id', '=', req.body.conversationId)
        .executeTakeFirst();
      if (!conv)
        throw httpError(404, `no conversation ${req.body.conversationId} was pushed for this location`, [
          { path: 'body.conversationId', message: 'expected a conversation pushed to this location' },
        ]);
      const forwarded = chatTypeFor(messageType, conv) === 'Live_Chat';
      if (forwarded) {
        await typingJob.enqueue(db, {
          locationId: loc,
          conversationId: req.body.conversationId,
          clientId: conv.client_id,
          isTyping: req.body.isTyping,
        });
        notify();
      }
      return reply.code(202).send({ ok: true as const, forwarded });
    },
  );

  z4.get(
    `${base}/lookup`,
    {
      preValidation: guard,
      schema: {
        ...common,
        summary: 'GHL ids for an external id, or the external ids for a GHL id',
        querystring: lookupQuery,
        response: { 200: lookupAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const loc = req.params.locationId;
      const q = req.query;
      const out: z.infer<typeof lookupAnswer> = { locationId: loc };
      const clientOf = async (clientId: string) => {
        const c = await db
          .selectFrom('chat_clients')
          .select(['client_id', 'contact_id', 'ghl_conversation_id'])
          .where('location_id', '=', loc)
          .where('client_id', '=', clientId)
          .executeTakeFirst();
        if (c)
          out.client = {
            externalId: c.client_id,
            ghlContactId: c.contact_id,
            ghlConversationId: c.ghl_conversation_id,
          };
      };
      if (q.messageId || q.ghlMessageId) {
        let mq = db
          .selectFrom('chat_messages')
          .select(['message_id', 'conversation_id', 'client_id', 'ghl_message_id', 'state', 'status_target'])
          .where('location_id', '=', loc);
        mq = q.messageId ? mq.where('message_id', '=', q.messageId) : mq.where('ghl_message_id', '=', q.ghlMessageId!);
        const m = await mq.executeTakeFirst();
        if (m) {
          out.message = {
            externalId: m.message_id,
            conversationId: m.conversation_id,
            ghlMessageId: m.ghl_message_id,
            state: m.state,
            status: m.status_target,
          };
          await clientOf(m.client_id);
        } else if (q.ghlMessageId) {
          const r = await db
            .selectFrom('chat_replies')
            .select([
              'ghl_message_id',
              'conversation_id',
              'client_id',
              'via',
              'ghl_channel',
              'state',
              'channel_message_id',
            ])
            .where('location_id', '=', loc)
            .where('ghl_message_id', '=', q.ghlMessageId)
            .executeTakeFirst();
          if (r) {
            out.reply = {
              ghlMessageId: r.ghl_message_id,
              conversationId: r.conversation_id,
              via: r.via,
              ghlChannel: r.ghl_channel,
              state: r.state,
              channelMessageId: r.channel_message_id,
            };
            await clientOf(r.client_id);
          }
        }
      } else if (q.conversationId) {
        const c = await db
          .selectFrom('chat_conversations')
          .select(['conversation_id', 'client_id', 'ghl_conversation_id'])
          .where('location_id', '=', loc)
          .where('conversation_id', '=', q.conversationId)
          .executeTakeFirst();
        if (c) {
          out.conversation = { externalId: c.conversation_id, ghlConversationId: c.ghl_conversation_id };
          await clientOf(c.client_id);
        }
      } else if (q.clientId) await clientOf(q.clientId);
      else if (q.ghlContactId) {
        const c = await db
          .selectFrom('chat_clients')
          .select('client_id')
          .where('location_id', '=', loc)
          .where('contact_id', '=', q.ghlContactId)
          .executeTakeFirst();
        if (c) await clientOf(c.client_id);
      }
      if (!out.client && !out.message && !out.conversation && !out.reply)
        throw httpError(404, 'nothing of this location matches the id', [
          { path: `query.${Object.keys(q).find((k) => q[k as keyof typeof q])}`, message: 'no match' },
        ]);
      return out;
    },
  );
}
