import { sql } from 'kysely';
import { z } from 'zod';
import { ChannelRetryableError, type OutboundMessage } from '../channels/index.js';
import { defineJob, PRIORITY, RetryLaterError } from '../../infra/queue/index.js';
import { locationKey, orderingKeys } from '../../platform/keys.js';
import { chatTypeFor, publishChat, type ChatRuntime } from './sync.js';
import './tables.js';

export const JOB_CHAT_FORWARD = 'chat.forward';

const json = (v: unknown) => sql<string>`${JSON.stringify(v)}::jsonb`;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 1000);

/**
 * GHL channel names as the OutboundMessage event (`messageType`: `SMS`, `Email`, `Live Chat` …) or a message read
 * (`TYPE_SMS`, `TYPE_LIVE_CHAT` …) spell them, reduced to one key. Only text channels a person replies on are
 * forwarded: calls, voicemails, form submissions, activities and internal comments are not.
 */
const FORWARDABLE: Record<string, 'text' | 'email'> = {
  sms: 'text',
  rcs: 'text',
  whatsapp: 'text',
  gmb: 'text',
  ig: 'text',
  instagram: 'text',
  fb: 'text',
  facebook: 'text',
  livechat: 'text',
  webchat: 'text',
  tiktok: 'text',
  customsms: 'text',
  customprovidersms: 'text',
  email: 'email',
  customemail: 'email',
  customprovideremail: 'email',
};
export const channelKey = (messageType: string) =>
  messageType
    .replace(/^TYPE_/i, '')
    .replace(/[^a-z]/gi, '')
    .toLowerCase();

/** A GHL message that may be a GHL user's reply on some channel (from the OutboundMessage event or a read). */
export interface CandidateReply {
  locationId: string;
  contactId: string;
  messageId: string;
  /** Event `messageType` (`SMS`, `Live Chat` …) or the message's `TYPE_*`. */
  messageType: string;
  source?: string | undefined;
  conversationProviderId?: string | undefined;
  body?: string | undefined;
  attachments: string[];
  userId?: string | undefined;
  subject?: string | undefined;
  emailFrom?: string | undefined;
  emailTo?: string[] | undefined;
}

export type ConsiderOutcome =
  'forwarded' | 'known' | 'own' | 'unlinked' | 'provider' | 'not_a_user_reply' | 'channel_not_forwarded' | 'off';

/**
 * Decides whether a GHL message is a GHL user's reply the chat product should get on top of the provider path, and
 * if so records it (keyed by its GHL message id) and queues its forwarding, in one transaction. Dropped: messages the
 * bridge created itself (its recorded GHL ids), contacts the chat API never linked, messages of the bridge's own
 * conversation provider (ProviderOutboundMessage carries those), messages not sent by a GHL user in the app
 * (workflow, campaign, bulk, API), non-text channels, and other channels unless CHAT_FORWARD_OTHER_CHANNELS is on —
 * except Live Chat for a client whose messages go into GHL as Live_Chat (that is the chat's own channel).
 */
export async function considerReply(rt: ChatRuntime, m: CandidateReply): Promise<ConsiderOutcome> {
  const db = rt.db;
  const own = await db
    .selectFrom('chat_messages')
    .select('message_id')
    .where('ghl_message_id', '=', m.messageId)
    .executeTakeFirst();
  if (own) return 'own';
  // The bridge's own provider: its ProviderOutboundMessage carries the reply (no DB read needed to know).
  if (
    m.conversationProviderId &&
    m.conversationProviderId === (await rt.provider().conversationProviderId(m.locationId))
  )
    return 'provider';
  if (m.source !== undefined && m.source !== 'app') return 'not_a_user_reply';
  const key = channelKey(m.messageType);
  const kind = FORWARDABLE[key];
  if (!kind) return 'channel_not_forwarded';
  const client = await db
    .selectFrom('chat_clients')
    .select(['client_id', 'ghl_conversation_id', 'phone', 'email', 'created_at'])
    .where('location_id', '=', m.locationId)
    .where('contact_id', '=', m.contactId)
    .executeTakeFirst();
  if (!client) return 'unlinked';
  const ownChannel = key === 'livechat' && chatTypeFor(rt.messageType, client) === 'Live_Chat';
  if (!ownChannel && !rt.forwardOtherChannels) return 'off';
  const thread = (
    await db
      .selectFrom('chat_conversations')
      .select('conversation_id')
      .where('location_id', '=', m.locationId)
      .where('client_id', '=', client.client_id)
      .orderBy('last_activity_at', 'desc')
      .limit(1)
      .executeTakeFirst()
  )?.conversation_id;
  if (!thread) return 'unlinked';
  const msg: OutboundMessage = {
    messageId: m.messageId,
    locationId: m.locationId,
    contactId: m.contactId,
    channel: kind === 'email' ? 'Email' : 'SMS',
    attachments: m.attachments,
    chat: {
      conversationId: thread,
      clientId: client.client_id,
      ...(client.ghl_conversation_id ? { ghlConversationId: client.ghl_conversation_id } : {}),
      ghlChannel: m.messageType,
    },
  };
  if (kind === 'email') {
    if (m.body !== undefined) msg.html = m.body;
    if (m.subject) msg.subject = m.subject;
    if (m.emailFrom) msg.emailFrom = m.emailFrom;
    const to = m.emailTo?.length ? m.emailTo : client.email ? [client.email] : undefined;
    if (to) msg.emailTo = to;
  } else {
    if (m.body !== undefined) msg.message = m.body;
    if (client.phone) msg.phone = client.phone;
  }
  if (m.userId) msg.userId = m.userId;
  const out = await db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('chat_replies')
      .values({
        ghl_message_id: m.messageId,
        location_id: m.locationId,
        contact_id: m.contactId,
        client_id: client.client_id,
        conversation_id: thread,
        via: 'other_channel',
        ghl_channel: m.messageType.slice(0, 100),
        payload: json(msg),
      })
      .onConflict((oc) => oc.column('ghl_message_id').doNothing())
      .returning('ghl_message_id')
      .executeTakeFirst();
    if (!inserted) return 'known' as const;
    await trx
      .updateTable('chat_conversations')
      .set({ last_activity_at: sql`now()` })
      .where('location_id', '=', m.locationId)
      .where('conversation_id', '=', thread)
      .execute();
    await forwardJob.enqueue(trx, {
      locationId: m.locationId,
      ghlMessageId: m.messageId,
      clientId: client.client_id,
      contactId: m.contactId,
    });
    return 'forwarded' as const;
  });
  if (out === 'forwarded') rt.notify();
  return out;
}

const forwardPayload = z.object({
  locationId: z.string().min(1),
  ghlMessageId: z.string().min(1),
  clientId: z.string().min(1),
  contactId: z.string().min(1),
});

/**
 * `chat.forward`: hands a recorded other-channel reply to the location's channel (the chat product), once: the row
 * is marked sent (with the channel's id) in the transaction that publishes `chat.message`. Ordered per contact with
 * the provider's replies (so per conversation: GHL keeps one conversation per contact). The bridge is not the
 * provider of these messages: no GHL status is reported for them.
 */
export const forwardJob = defineJob<z.infer<typeof forwardPayload>, ChatRuntime>({
  kind: JOB_CHAT_FORWARD,
  payload: forwardPayload,
  // The provider's key for the contact: in order with the replies relayed through the provider (provider.send), so
  // the chat product gets the contact's replies in the order GHL announced them, whichever path each took.
  orderingKey: (p) => orderingKeys.contact(p.locationId, p.contactId),
  scope: (p) => locationKey(p.locationId),
  dedupeKey: (p) => `${JOB_CHAT_FORWARD}:${p.ghlMessageId}`,
  priority: PRIORITY.live,
  maxAttempts: 15,
  perform: async (p, _job, h) => {
    const rt = h.deps;
    const row = await rt.db
      .updateTable('chat_replies')
      .set({ attempts: sql`attempts + 1` })
      .where('ghl_message_id', '=', p.ghlMessageId)
      .where('state', '=', 'pending')
      .returning(['payload', 'contact_id', 'conversation_id', 'client_id'])
      .executeTakeFirst();
    if (!row) return;
    const msg = row.payload as unknown as OutboundMessage;
    let result;
    try {
      result = await rt.provider().sendViaChannel(p.locationId, msg, h.signal);
    } catch (e) {
      await rt.db
        .updateTable('chat_replies')
        .set({ last_error: errText(e) })
        .where('ghl_message_id', '=', p.ghlMessageId)
        .execute();
      if (e instanceof ChannelRetryableError && e.retryAfterMs !== undefined && !h.signal.aborted)
        throw new RetryLaterError(Math.max(e.retryAfterMs, 10), errText(e));
      throw e;
    }
    await rt.db.transaction().execute(async (trx) => {
      const done = await trx
        .updateTable('chat_replies')
        .set(
          result.outcome === 'failed'
            ? { state: 'failed', last_error: `${result.error.code}: ${result.error.message}`.slice(0, 1000) }
            : {
                state: 'sent',
                sent_at: sql`now()`,
                last_error: null,
                channel_message_id: result.channelMessageId ?? null,
              },
        )
        .where('ghl_message_id', '=', p.ghlMessageId)
        .where('state', '=', 'pending')
        .returning('ghl_message_id')
        .executeTakeFirst();
      if (done && result.outcome !== 'failed')
        await publishChat(rt, trx, {
          locationId: p.locationId,
          contactId: row.contact_id,
          conversationId: msg.chat?.ghlConversationId ?? null,
          messageId: p.ghlMessageId,
          externalConversationId: row.conversation_id,
          externalMessageId: result.channelMessageId ?? p.ghlMessageId,
          direction: 'outbound',
          origin: 'ghl',
        });
    });
    if (result.outcome === 'failed')
      h.log.warn(
        { ghlMessageId: p.ghlMessageId, code: result.error.code },
        'the chat product refused a forwarded GHL reply',
      );
  },
  onFailed: async (p, _job, err, h) => {
    await h.db
      .updateTable('chat_replies')
      .set({ state: 'failed', last_error: errText(err) })
      .where('ghl_message_id', '=', p.ghlMessageId)
      .where('state', '=', 'pending')
      .execute();
  },
});
