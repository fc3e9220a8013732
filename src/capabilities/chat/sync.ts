import { sql } from 'kysely';
import { z } from 'zod';
import type { Counter } from 'prom-client';
import type { Db } from '../../infra/db/index.js';
import type { Logger } from '../../infra/log/logger.js';
import {
  defineJob,
  PermanentJobError,
  PRIORITY,
  RetryLaterError,
  type DbOrTrx,
  type JobContext,
} from '../../infra/queue/index.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import type { InboundMessageBody } from '../../platform/ghl/types.js';
import { locationKey } from '../../platform/keys.js';
import { findOrCreateConversation, mergeStatus, type ProviderService } from '../provider/index.js';
import type { EventsService } from '../events/service.js';
import type { ChatDirection, ChatStatus } from './tables.js';
import './tables.js';

export const JOB_CHAT_POST = 'chat.post';
export const JOB_CHAT_STATUS = 'chat.status';
export const JOB_CHAT_TYPING = 'chat.typing';

export type ChatMessageType = 'Custom' | 'Live_Chat' | 'SMS' | 'Email';

export interface ChatRuntime {
  db: Db;
  log: Logger;
  ghl: () => GhlClient;
  provider: () => ProviderService;
  messageType: ChatMessageType;
  fieldName: string;
  notify: () => void;
  metrics: { echoes: Counter<'direction'>; posted: Counter<'kind'> };
  /** CHAT_FORWARD_OTHER_CHANNELS: forward GHL users' replies on other channels (OutboundMessage) too. */
  forwardOtherChannels: boolean;
  /** The `events` service while it has subscribers (bridge events are published in the state change's transaction). */
  bus: () => EventsService | undefined;
}

/**
 * The GHL Add Inbound `type` for a client's messages: the configured CHAT_MESSAGE_TYPE when GHL users can reply to
 * the client on it, else Live_Chat. A reply through the bridge's SMS provider needs the contact's phone, through an
 * e-mail provider its e-mail (GHL refuses the send otherwise), so a client with neither would be unreachable from
 * GHL: its messages go in as Live_Chat, and GHL users reply on Live Chat (the OutboundMessage event, forwarded by
 * forward.ts). highlevel-api-docs #325: "the option to choose SMS or Email relies on us having phone or email".
 */
export function chatTypeFor(
  configured: ChatMessageType,
  client: { phone: string | null; email: string | null },
): ChatMessageType {
  switch (configured) {
    case 'Live_Chat':
      return 'Live_Chat';
    case 'SMS':
      return client.phone ? 'SMS' : 'Live_Chat';
    case 'Email':
      return client.email ? 'Email' : 'Live_Chat';
    case 'Custom':
      return client.phone || client.email ? 'Custom' : 'Live_Chat';
  }
}

/** Publishes `chat.message` in `trx` (the transaction recording the change) when the events service has subscribers. */
export async function publishChat(
  rt: Pick<ChatRuntime, 'bus'>,
  trx: DbOrTrx,
  data: {
    locationId: string;
    contactId: string | null;
    conversationId: string | null;
    messageId: string | null;
    externalConversationId: string;
    externalMessageId: string;
    direction: ChatDirection;
    origin: 'chat' | 'ghl';
  },
): Promise<void> {
  const bus = rt.bus();
  if (!bus) return;
  await bus.publish(trx as Db, { type: 'chat.message', locationId: data.locationId, contactId: data.contactId, data });
}

/**
 * Jobs of one external client of a location run one at a time, in the order they were stored: identity (the client's
 * contact) is resolved by exactly one job at a time, so 20 concurrent first messages create one contact, and a
 * client's messages reach GHL in the order the chat product pushed them.
 */
export const clientKey = (locationId: string, clientId: string) => `chat:${locationId}:${clientId}`;

const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 1000);

export interface ClientInput {
  externalId: string;
  name?: string | undefined;
  email?: string | undefined;
  /** E.164 (normalised at the edge). */
  phone?: string | undefined;
}

export interface MessageInput {
  externalId: string;
  direction: ChatDirection;
  text?: string | undefined;
  attachments: string[];
  sentAt: Date;
  author?: { id?: string | undefined; name?: string | undefined } | undefined;
}

export class ChatConflictError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Stores messages of one external conversation (in the caller's transaction) and queues their GHL work in order.
 * Idempotent on the external message id: a message already stored is a duplicate and changes nothing.
 */
export async function storeMessages(
  trx: DbOrTrx,
  locationId: string,
  conversationId: string,
  client: ClientInput,
  messages: MessageInput[],
  history: boolean,
): Promise<{ accepted: number; duplicates: number; acceptedIds: string[] }> {
  await trx
    .insertInto('chat_clients')
    .values({
      location_id: locationId,
      client_id: client.externalId,
      name: client.name ?? null,
      email: client.email ?? null,
      phone: client.phone ?? null,
    })
    .onConflict((oc) =>
      oc.columns(['location_id', 'client_id']).doUpdateSet({
        name: sql`coalesce(excluded.name, chat_clients.name)`,
        email: sql`coalesce(excluded.email, chat_clients.email)`,
        phone: sql`coalesce(excluded.phone, chat_clients.phone)`,
      }),
    )
    .execute();
  const conv = await trx
    .insertInto('chat_conversations')
    .values({ location_id: locationId, conversation_id: conversationId, client_id: client.externalId })
    .onConflict((oc) => oc.columns(['location_id', 'conversation_id']).doUpdateSet({ last_activity_at: sql`now()` }))
    .returning('client_id')
    .executeTakeFirstOrThrow();
  if (conv.client_id !== client.externalId)
    throw new ChatConflictError(
      'body.client.externalId',
      `conversation ${conversationId} belongs to another client (${conv.client_id}); nothing was stored`,
    );
  const acceptedIds: string[] = [];
  for (const m of messages) {
    const row = await trx
      .insertInto('chat_messages')
      .values({
        location_id: locationId,
        message_id: m.externalId,
        conversation_id: conversationId,
        client_id: client.externalId,
        direction: m.direction,
        body: json({
          ...(m.text !== undefined ? { text: m.text } : {}),
          attachments: m.attachments,
          ...(m.author ? { author: m.author } : {}),
        }),
        sent_at: m.sentAt,
        history,
      })
      .onConflict((oc) => oc.columns(['location_id', 'message_id']).doNothing())
      .returning('message_id')
      .executeTakeFirst();
    if (!row) continue;
    acceptedIds.push(m.externalId);
    await postJob.enqueue(trx, { locationId, messageId: m.externalId, clientId: client.externalId, history });
  }
  return { accepted: acceptedIds.length, duplicates: messages.length - acceptedIds.length, acceptedIds };
}

const postPayload = z.object({
  locationId: z.string().min(1),
  messageId: z.string().min(1),
  clientId: z.string().min(1),
  history: z.boolean().default(false),
});

/** `chat.post`: identity → conversation → Add Inbound Message (with direction, date and altId) → record the GHL id. */
export const postJob = defineJob<z.infer<typeof postPayload>, ChatRuntime>({
  kind: JOB_CHAT_POST,
  payload: postPayload,
  orderingKey: (p) => clientKey(p.locationId, p.clientId),
  scope: (p) => locationKey(p.locationId),
  dedupeKey: (p) => `${JOB_CHAT_POST}:${p.locationId}:${p.messageId}`,
  priority: PRIORITY.live,
  maxAttempts: 15,
  perform: (p, _job, h) => postMessage(h.deps, p, h),
  onFailed: async (p, _job, err, h) => {
    await h.db
      .updateTable('chat_messages')
      .set({ state: 'failed', last_error: errText(err) })
      .where('location_id', '=', p.locationId)
      .where('message_id', '=', p.messageId)
      .where('state', '=', 'pending')
      .execute();
  },
});

/** A post job that gets no GHL rate-limit slot within this time gives its worker slot back and runs again later. */
export const CHAT_RATE_WAIT_YIELD_MS = 2_000;

/**
 * One attempt. Statements on the usual path (client known): one claim (the message joined with its client and
 * thread, marked attempted), the GHL call, one record (plus the `chat.message` event in the same transaction when
 * someone subscribes). The thread's GHL id is written only when it changed; identity work only for new clients.
 */
async function postMessage(rt: ChatRuntime, p: z.infer<typeof postPayload>, h: JobContext<ChatRuntime>): Promise<void> {
  const { db } = rt;
  const loc = p.locationId;
  // Claim: the pending message with its client and thread in one statement; `attempts` before this one tells
  // whether an earlier attempt may have reached GHL.
  const claimed = await sql<ClaimRow>`
    update chat_messages m set attempts = m.attempts + 1
    from chat_clients c, chat_conversations v
    where m.location_id = ${loc} and m.message_id = ${p.messageId} and m.state = 'pending'
      and c.location_id = m.location_id and c.client_id = m.client_id
      and v.location_id = m.location_id and v.conversation_id = m.conversation_id
    returning m.message_id, m.conversation_id, m.client_id, m.direction, m.body, m.sent_at, m.attempts - 1 as prior,
      c.contact_id, c.ghl_conversation_id, c.name, c.email, c.phone, v.ghl_conversation_id as thread_ghl`.execute(db);
  const row = claimed.rows[0];
  if (!row) return;
  const body0 = typeof row.body === 'string' ? (JSON.parse(row.body) as ChatBody) : row.body;
  const lane = p.history ? ('bulk' as const) : ('live' as const);
  const opts = { installation: { locationId: loc }, lane, signal: h.signal };
  // Whether this attempt may have reached GHL's Add Inbound (else the claim's attempt is given back).
  let reached = false;
  try {
    const { contactId, ghlConversationId } =
      row.contact_id && row.ghl_conversation_id
        ? { contactId: row.contact_id, ghlConversationId: row.ghl_conversation_id }
        : await resolveClient(rt, loc, row.client_id, lane, h);
    if (row.thread_ghl !== ghlConversationId)
      await db
        .updateTable('chat_conversations')
        .set({ ghl_conversation_id: ghlConversationId })
        .where('location_id', '=', loc)
        .where('conversation_id', '=', row.conversation_id)
        .execute();
    const ghl = rt.ghl();
    // A previous attempt may have posted it and died before recording the answer: look for its altId first.
    if (row.prior > 0) {
      const found = await findByAltId(ghl, ghlConversationId, row.message_id, { ...opts, lane: 'bulk' });
      if (found) return await recordPosted(rt, p, row, found, contactId, ghlConversationId);
    }
    const providerId = await rt.provider().conversationProviderId(loc);
    const body: InboundMessageBody = {
      type: chatTypeFor(rt.messageType, row),
      conversationId: ghlConversationId,
      contactId,
      direction: row.direction,
      date: new Date(row.sent_at).toISOString(),
      altId: row.message_id,
      attachments: body0.attachments ?? [],
    } as InboundMessageBody;
    if (providerId) body.conversationProviderId = providerId;
    if (body0.text !== undefined) body.message = body0.text;
    reached = true;
    let res;
    try {
      res = await ghl.messages.addInbound(body, {
        ...opts,
        // Waiting for a rate-limit slot happens in the queue, not in a worker slot other locations need.
        maxWaitMs: CHAT_RATE_WAIT_YIELD_MS,
        verify: () => findByAltId(ghl, ghlConversationId, row.message_id, { ...opts, lane: 'bulk' }),
      });
    } catch (e) {
      // The remembered contact or conversation was deleted in GHL: forget it and resolve again on the retry.
      if (e instanceof GhlApiError && e.status === 400 && /conversation|contact/i.test(e.message)) {
        await db
          .updateTable('chat_clients')
          .set({ contact_id: null, ghl_conversation_id: null, updated_at: sql`now()` })
          .where('location_id', '=', loc)
          .where('client_id', '=', row.client_id)
          .execute();
      }
      // No rate-limit slot: the client retries only after GHL took no effect, so nothing reached GHL.
      if (e instanceof RetryLaterError && /rate limit/.test(e.message)) reached = false;
      throw e;
    }
    const id = typeof res === 'string' ? res : res.messageId;
    if (!id) throw new Error('Add Inbound Message answered without a messageId');
    await recordPosted(rt, p, row, id, contactId, ghlConversationId);
    rt.metrics.posted.inc({ kind: p.history ? 'history' : row.direction });
  } catch (e) {
    if (!(e instanceof RetryLaterError) || !reached)
      await db
        .updateTable('chat_messages')
        .set({
          ...(e instanceof RetryLaterError ? {} : { last_error: errText(e) }),
          ...(reached ? {} : { attempts: row.prior }),
        })
        .where('location_id', '=', loc)
        .where('message_id', '=', row.message_id)
        .where('state', '=', 'pending')
        .execute();
    throw e;
  }
}

type ChatBody = { text?: string; attachments: string[]; author?: { id?: string; name?: string } };
interface ClaimRow {
  message_id: string;
  conversation_id: string;
  client_id: string;
  direction: ChatDirection;
  body: ChatBody | string;
  sent_at: Date | string;
  prior: number;
  contact_id: string | null;
  ghl_conversation_id: string | null;
  name: string | null;
  email: string | null;
  phone: string | null;
  thread_ghl: string | null;
}

async function recordPosted(
  rt: ChatRuntime,
  p: { locationId: string },
  row: Pick<ClaimRow, 'message_id' | 'conversation_id' | 'direction'>,
  ghlMessageId: string,
  contactId: string,
  ghlConversationId: string,
): Promise<void> {
  const loc = p.locationId;
  const update = (db: DbOrTrx) =>
    db
      .updateTable('chat_messages')
      .set({ state: 'posted', ghl_message_id: ghlMessageId, posted_at: sql`now()`, last_error: null })
      .where('location_id', '=', loc)
      .where('message_id', '=', row.message_id)
      .where('state', '=', 'pending')
      .executeTakeFirst();
  const bus = rt.bus();
  if (!bus) {
    await update(rt.db);
    return;
  }
  await rt.db.transaction().execute(async (trx) => {
    const r = await update(trx);
    if (Number(r.numUpdatedRows) !== 1) return; // recorded by an earlier run: its event exists
    await publishChat(rt, trx, {
      locationId: loc,
      contactId,
      conversationId: ghlConversationId,
      messageId: ghlMessageId,
      externalConversationId: row.conversation_id,
      externalMessageId: row.message_id,
      direction: row.direction,
      origin: 'chat',
    });
  });
  bus.wake();
}

async function findByAltId(
  ghl: GhlClient,
  conversationId: string,
  altId: string,
  opts: Parameters<GhlClient['messages']['list']>[2],
): Promise<string | undefined> {
  let pages = 0;
  for await (const m of ghl.messages.iterate(conversationId, { limit: 100 }, opts)) {
    if ((m as { altId?: string }).altId === altId) return m.id;
    if (++pages > 1000) break;
  }
  return undefined;
}

/**
 * The client's GHL contact and conversation: the bridge's own map; else the contact holding the client id in the
 * custom field (the map rebuilt); else GHL's duplicate match by e-mail or phone (upsert, which also stores the
 * client id on it); else a new contact with the client id. Runs under the client's ordering key only.
 */
async function resolveClient(
  rt: ChatRuntime,
  loc: string,
  clientId: string,
  lane: 'live' | 'bulk',
  h: JobContext<ChatRuntime>,
): Promise<{ contactId: string; ghlConversationId: string }> {
  const { db } = rt;
  const c = await db
    .selectFrom('chat_clients')
    .selectAll()
    .where('location_id', '=', loc)
    .where('client_id', '=', clientId)
    .executeTakeFirstOrThrow();
  let contactId = c.contact_id;
  const ghl = rt.ghl();
  const opts = { installation: { locationId: loc }, lane, signal: h.signal };
  if (!contactId) {
    const fieldId = await ensureField(rt, loc, h);
    const byField = async () => {
      const r = await ghl.contacts.search(
        {
          locationId: loc,
          pageLimit: 1,
          filters: [{ field: `customFields.${fieldId}`, operator: 'eq', value: clientId }],
        },
        opts,
      );
      return r.contacts?.[0]?.id;
    };
    contactId = (await byField()) ?? null;
    const customFields = [{ id: fieldId, field_value: clientId }];
    const names = splitName(c.name);
    if (!contactId && (c.email || c.phone)) {
      const r = await ghl.contacts.upsert(
        {
          locationId: loc,
          ...(c.email ? { email: c.email } : {}),
          ...(c.phone ? { phone: c.phone } : {}),
          ...names,
          source: 'ghl-bridge chat',
          customFields,
        } as Parameters<GhlClient['contacts']['upsert']>[0],
        opts,
      );
      contactId = r.contact?.id ?? null;
    }
    if (!contactId) {
      const r = await ghl.contacts.create(
        { locationId: loc, ...names, source: 'ghl-bridge chat', customFields } as Parameters<
          GhlClient['contacts']['create']
        >[0],
        { ...opts, verify: async () => ((await byField()) ? { contact: { id: await byField() } } : undefined) },
      );
      contactId = (r as { contact?: { id?: string } }).contact?.id ?? null;
    }
    if (!contactId) throw new Error('GHL answered the contact create without an id');
    await db
      .updateTable('chat_clients')
      .set({ contact_id: contactId, ghl_conversation_id: null, updated_at: sql`now()` })
      .where('location_id', '=', loc)
      .where('client_id', '=', clientId)
      .execute();
  }
  let conv = contactId === c.contact_id ? c.ghl_conversation_id : null;
  if (!conv) {
    conv = await findOrCreateConversation(ghl, loc, contactId, h.signal);
    await db
      .updateTable('chat_clients')
      .set({ ghl_conversation_id: conv, updated_at: sql`now()` })
      .where('location_id', '=', loc)
      .where('client_id', '=', clientId)
      .execute();
  }
  return { contactId, ghlConversationId: conv };
}

function splitName(name: string | null): { firstName?: string; lastName?: string; name?: string } {
  if (!name) return {};
  const [first, ...rest] = name.trim().split(/\s+/);
  return {
    name: name.trim(),
    ...(first ? { firstName: first } : {}),
    ...(rest.length ? { lastName: rest.join(' ') } : {}),
  };
}

/**
 * The location's custom field for the client id: remembered, else found by name, else created. One job per
 * location creates it: the first claims the row (field_id ''), the others wait for it; a claim older than 60 s (its
 * job died) is taken over.
 */
async function ensureField(rt: ChatRuntime, loc: string, h: JobContext<ChatRuntime>): Promise<string> {
  const { db } = rt;
  const row = await db.selectFrom('chat_fields').selectAll().where('location_id', '=', loc).executeTakeFirst();
  if (row?.field_id && row.field_name === rt.fieldName) return row.field_id;
  let claimed = false;
  if (!row) {
    const ins = await db
      .insertInto('chat_fields')
      .values({ location_id: loc, field_name: rt.fieldName, field_id: '' })
      .onConflict((oc) => oc.column('location_id').doNothing())
      .returning('location_id')
      .executeTakeFirst();
    claimed = ins !== undefined;
  } else {
    // A renamed field (CHAT_CLIENT_ID_FIELD changed), or a claim whose job died.
    const upd = await db
      .updateTable('chat_fields')
      .set({ field_name: rt.fieldName, field_id: '', created_at: sql`now()` })
      .where('location_id', '=', loc)
      .where((eb) =>
        eb.or([
          eb('field_name', '!=', rt.fieldName),
          eb.and([eb('field_id', '=', ''), eb('created_at', '<', sql<Date>`now() - interval '60 seconds'`)]),
        ]),
      )
      .executeTakeFirst();
    claimed = Number(upd.numUpdatedRows) === 1;
  }
  if (!claimed) throw new RetryLaterError(200, 'another job is creating the chat client-id custom field');
  const ghl = rt.ghl();
  const opts = { installation: { locationId: loc }, lane: 'live' as const, signal: h.signal };
  const list = (await ghl.customFields.list(loc, { ...opts, model: 'contact' })) as {
    customFields?: Array<{ id?: string; name?: string }>;
  };
  let id = list.customFields?.find((f) => f.name === rt.fieldName)?.id;
  if (!id) {
    const r = (await ghl.customFields.create(
      loc,
      { name: rt.fieldName, dataType: 'TEXT', model: 'contact' } as Parameters<GhlClient['customFields']['create']>[1],
      opts,
    )) as { customField?: { id?: string } };
    id = r.customField?.id;
  }
  if (!id) throw new Error('GHL answered the custom field create without an id');
  await db.updateTable('chat_fields').set({ field_id: id }).where('location_id', '=', loc).execute();
  return id;
}

const statusPayload = z.object({
  locationId: z.string().min(1),
  messageId: z.string().min(1),
  clientId: z.string().min(1),
});

/**
 * Stores a status the chat product reported for one of its messages, forward-only (pending → delivered → read;
 * failed only from pending), and queues the GHL status call behind the message's post. False when it is unknown.
 */
export async function storeStatus(
  db: Db,
  locationId: string,
  messageId: string,
  status: ChatStatus,
): Promise<'unknown' | 'stored' | 'unchanged'> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('chat_messages')
      .select(['status_target', 'client_id'])
      .where('location_id', '=', locationId)
      .where('message_id', '=', messageId)
      .forUpdate()
      .executeTakeFirst();
    if (!row) return 'unknown';
    const merged = mergeStatus(row.status_target, status);
    if (!merged) return 'unchanged';
    await trx
      .updateTable('chat_messages')
      .set({ status_target: merged })
      .where('location_id', '=', locationId)
      .where('message_id', '=', messageId)
      .execute();
    await statusJob.enqueue(trx, { locationId, messageId, clientId: row.client_id });
    return 'stored';
  });
}

/** `chat.status`: PUT the message's status in GHL if it is ahead of what GHL last accepted. */
export const statusJob = defineJob<z.infer<typeof statusPayload>, ChatRuntime>({
  kind: JOB_CHAT_STATUS,
  payload: statusPayload,
  // Behind the client's post jobs: the GHL message exists before its status is set.
  orderingKey: (p) => clientKey(p.locationId, p.clientId),
  scope: (p) => locationKey(p.locationId),
  priority: PRIORITY.live,
  maxAttempts: 10,
  perform: async (p, _job, h) => {
    const { db } = h.deps;
    const row = await db
      .selectFrom('chat_messages')
      .select(['ghl_message_id', 'status_target', 'ghl_status', 'state'])
      .where('location_id', '=', p.locationId)
      .where('message_id', '=', p.messageId)
      .executeTakeFirst();
    if (!row?.status_target || !row.ghl_message_id || row.state !== 'posted') return;
    const target = row.status_target;
    if (!mergeStatus(row.ghl_status, target)) return;
    try {
      await h.deps.ghl().messages.updateStatus(
        row.ghl_message_id,
        {
          status: target,
          ...(target === 'failed'
            ? { error: { code: 'CHAT_FAILED', type: 'provider', message: 'the chat product reported it failed' } }
            : {}),
        } as Parameters<GhlClient['messages']['updateStatus']>[1],
        { installation: { locationId: p.locationId }, lane: 'live', signal: h.signal, maxWaitMs: 2000 },
      );
    } catch (e) {
      if (e instanceof GhlApiError && e.status === 400 && /cannot update message status/i.test(e.message)) return;
      if (e instanceof GhlApiError && (e.status === 403 || e.status === 404)) throw new PermanentJobError(errText(e));
      throw e;
    }
    await db
      .updateTable('chat_messages')
      .set({ ghl_status: target })
      .where('location_id', '=', p.locationId)
      .where('message_id', '=', p.messageId)
      .execute();
  },
});

const typingPayload = z.object({
  locationId: z.string().min(1),
  conversationId: z.string().min(1),
  clientId: z.string().min(1),
  isTyping: z.boolean(),
});

/** `chat.typing`: the agent typing indicator, for Live_Chat only; stale indicators are not retried for long. */
export const typingJob = defineJob<z.infer<typeof typingPayload>, ChatRuntime>({
  kind: JOB_CHAT_TYPING,
  payload: typingPayload,
  scope: (p) => locationKey(p.locationId),
  priority: PRIORITY.live,
  maxAttempts: 2,
  perform: async (p, _job, h) => {
    const conv = await h.deps.db
      .selectFrom('chat_conversations as v')
      .innerJoin('chat_clients as c', (j) =>
        j.onRef('c.location_id', '=', 'v.location_id').onRef('c.client_id', '=', 'v.client_id'),
      )
      .select(['v.ghl_conversation_id', 'c.phone', 'c.email'])
      .where('v.location_id', '=', p.locationId)
      .where('v.conversation_id', '=', p.conversationId)
      .executeTakeFirst();
    if (!conv?.ghl_conversation_id || chatTypeFor(h.deps.messageType, conv) !== 'Live_Chat') return;
    await h.deps.ghl().liveChat.typing(
      {
        locationId: p.locationId,
        isTyping: String(p.isTyping),
        visitorId: p.clientId,
        conversationId: conv.ghl_conversation_id,
      },
      { installation: { locationId: p.locationId }, lane: 'live', signal: h.signal, maxWaitMs: 2000 },
    );
  },
});

/**
 * The provider's outbound decorator: a message the bridge itself posted (its GHL id is recorded) is an echo and is
 * never sent; a reply to a linked contact gets the chat product's ids (the thread replied to, else the client's
 * latest active thread). Other contacts' messages pass unchanged.
 */
export function outboundDecorator(rt: ChatRuntime) {
  return async <
    M extends {
      messageId: string;
      locationId: string;
      contactId: string;
      replyToAltId?: string;
      channel?: string;
      message?: string;
    },
  >(
    msg: M,
  ): Promise<(M & { chat?: { conversationId: string; clientId: string; ghlConversationId?: string } }) | null> => {
    const { db } = rt;
    // One look-up: is it the bridge's own message; the contact's client; a pending agent message of that client
    // already sent to GHL whose text could be this one (GHL would deliver the bridge's text unchanged, so a
    // different text cannot be an echo — the decision itself is made by ids below); the thread replied to, else
    // the client's latest active thread.
    const isEmail = msg.channel === 'Email';
    const look = await sql<{
      own: boolean;
      client_id: string | null;
      ghl_conversation_id: string | null;
      in_flight: boolean | null;
      thread: string | null;
    }>`
      select exists (select 1 from chat_messages where ghl_message_id = ${msg.messageId}) as own,
        c.client_id, c.ghl_conversation_id,
        exists (
          select 1 from chat_messages m
          where m.location_id = c.location_id and m.client_id = c.client_id and m.state = 'pending'
            and m.attempts > 0 and m.direction = 'outbound'
            and (${isEmail}::boolean or coalesce(m.body->>'text', '') = ${msg.message ?? ''})
        ) as in_flight,
        coalesce(
          (select r.conversation_id from chat_messages r
            where r.location_id = c.location_id and r.client_id = c.client_id
              and r.message_id = ${msg.replyToAltId ?? null}::text),
          (select v.conversation_id from chat_conversations v
            where v.location_id = c.location_id and v.client_id = c.client_id
            order by v.last_activity_at desc limit 1)
        ) as thread
      from (select 1) one
      left join lateral (
        select location_id, client_id, ghl_conversation_id from chat_clients
        where location_id = ${msg.locationId} and contact_id = ${msg.contactId} limit 1
      ) c on true`.execute(db);
    const row = look.rows[0];
    if (row?.own) {
      rt.metrics.echoes.inc({ direction: 'to_chat' });
      return null;
    }
    if (!row?.client_id) return msg;
    const client = { client_id: row.client_id, ghl_conversation_id: row.ghl_conversation_id };
    // An agent message of this client may be in flight (GHL answered, its id not yet recorded): if GHL delivered the
    // bridge's own message to the provider meanwhile, only GHL's record of it tells — read its altId (ids, never text).
    if (row.in_flight) {
      const m = (await rt
        .ghl()
        .messages.get(msg.messageId, { installation: { locationId: msg.locationId }, lane: 'live' })
        .catch(() => undefined)) as { altId?: string; message?: { altId?: string } } | undefined;
      const altId = m?.altId ?? m?.message?.altId;
      if (altId) {
        const mine = await db
          .selectFrom('chat_messages')
          .select('message_id')
          .where('location_id', '=', msg.locationId)
          .where('message_id', '=', altId)
          .executeTakeFirst();
        if (mine) {
          rt.metrics.echoes.inc({ direction: 'to_chat' });
          return null;
        }
      }
    }
    const thread = row.thread;
    if (!thread) return msg;
    // The reply's record (once per GHL id, whichever attempt gets here first) with the thread's activity in one
    // statement; with subscribers, its `chat.message` event in the same transaction. The provider module tracks the
    // delivery itself.
    const record = sql<{ inserted: number }>`
      with t as (
        update chat_conversations set last_activity_at = now()
        where location_id = ${msg.locationId} and conversation_id = ${thread}
      ),
      r as (
        insert into chat_replies (ghl_message_id, location_id, contact_id, client_id, conversation_id, via, ghl_channel,
          payload, state, sent_at)
        values (${msg.messageId}, ${msg.locationId}, ${msg.contactId}, ${client.client_id}, ${thread}, 'provider',
          ${msg.channel ?? 'SMS'}, '{}'::jsonb, 'sent', now())
        on conflict (ghl_message_id) do nothing
        returning 1
      )
      select count(*)::int as inserted from r`;
    const bus = rt.bus();
    if (!bus) await record.execute(db);
    else {
      await db.transaction().execute(async (trx) => {
        const r = await record.execute(trx);
        if (!r.rows[0]?.inserted) return;
        await publishChat(rt, trx, {
          locationId: msg.locationId,
          contactId: msg.contactId,
          conversationId: client.ghl_conversation_id,
          messageId: msg.messageId,
          externalConversationId: thread,
          externalMessageId: msg.messageId,
          direction: 'outbound',
          origin: 'ghl',
        });
      });
      bus.wake();
    }
    return {
      ...msg,
      chat: {
        conversationId: thread,
        clientId: client.client_id,
        ...(client.ghl_conversation_id ? { ghlConversationId: client.ghl_conversation_id } : {}),
      },
    };
  };
}
