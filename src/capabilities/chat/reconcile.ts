import { sql } from 'kysely';
import type { Counter } from 'prom-client';
import { isOurPending } from '../provider/index.js';
import { considerReply } from './forward.js';
import type { ChatRuntime } from './sync.js';

export interface ReconcileSettings {
  /** Conversations active within this window are read; older messages are not considered. */
  lookbackMs: number;
  /** Pages of 100 messages read per conversation at most. */
  maxPages: number;
}

export interface ReconcileResult {
  conversations: number;
  repaired: number;
  calls: number;
  errors: number;
}

/**
 * Missed-event repair: GHL retries a webhook only on 429 and some events are never sent. Reads the messages of every
 * linked GHL conversation active within the look-back (GET /conversations/{id}/messages, newest first, bulk lane) and
 * relays each GHL-user message of this provider that is still pending and that the bridge never received; the
 * provider's send machinery (one row per GHL message id) makes a repair racing a late delivery one send.
 */
export async function reconcile(
  rt: ChatRuntime,
  s: ReconcileSettings,
  repaired: Counter<'location'>,
  o: { locationId?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<ReconcileResult> {
  const since = new Date(Date.now() - s.lookbackMs);
  let q = rt.db
    .selectFrom('chat_clients as c')
    .select(['c.location_id', 'c.contact_id', 'c.ghl_conversation_id', 'c.phone', 'c.created_at'])
    .where('c.ghl_conversation_id', 'is not', null)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('chat_conversations as v')
          .select(sql`1`.as('one'))
          .whereRef('v.location_id', '=', 'c.location_id')
          .whereRef('v.client_id', '=', 'c.client_id')
          .where('v.last_activity_at', '>=', since),
      ),
    );
  if (o.locationId) q = q.where('c.location_id', '=', o.locationId);
  const rows = await q.execute();
  const res: ReconcileResult = { conversations: 0, repaired: 0, calls: 0, errors: 0 };
  const provider = rt.provider();
  const ghl = rt.ghl();
  const providerIds = new Map<string, string | undefined>();
  for (const r of rows) {
    if (o.signal?.aborted) break;
    if (!r.ghl_conversation_id || !r.contact_id) continue;
    res.conversations++;
    const loc = r.location_id;
    if (!providerIds.has(loc)) providerIds.set(loc, await provider.conversationProviderId(loc));
    const providerId = providerIds.get(loc);
    const linkedAt = new Date(r.created_at).getTime();
    try {
      let lastMessageId: string | undefined;
      for (let page = 0; page < s.maxPages; page++) {
        res.calls++;
        const p = await ghl.messages.list(
          r.ghl_conversation_id,
          { limit: 100, ...(lastMessageId ? { lastMessageId } : {}) },
          { installation: { locationId: loc }, lane: 'bulk', ...(o.signal ? { signal: o.signal } : {}) },
        );
        let older = false;
        for (const m of p.messages ?? []) {
          const at = Date.parse(String(m.dateAdded));
          if (Number.isFinite(at) && at < since.getTime()) {
            older = true;
            continue;
          }
          const mm = m as typeof m & {
            conversationProviderId?: string;
            altId?: string;
            userId?: string;
            source?: string;
            meta?: { email?: { subject?: string } };
          };
          // A GHL user's reply on another channel (or Live Chat) whose OutboundMessage event never came: forwarded
          // under the same rules as the event, recorded by GHL id (an event arriving later finds it known).
          if (
            m.direction === 'outbound' &&
            mm.conversationProviderId !== providerId &&
            Number.isFinite(at) &&
            at >= linkedAt
          ) {
            const outcome = await considerReply(rt, {
              locationId: loc,
              contactId: r.contact_id,
              messageId: m.id,
              messageType: String(m.messageType ?? ''),
              source: mm.source,
              conversationProviderId: mm.conversationProviderId,
              body: m.body ?? '',
              attachments: (m.attachments ?? []).filter((x): x is string => typeof x === 'string'),
              userId: mm.userId,
            });
            if (outcome === 'forwarded') {
              res.repaired++;
              repaired.inc({ location: loc });
            }
            continue;
          }
          if (!providerId || isOurPending(mm, providerId) !== 'SMS') continue;
          // Messages the bridge posted itself are never relayed (echo), whatever their status.
          const own = await rt.db
            .selectFrom('chat_messages')
            .select('message_id')
            .where('ghl_message_id', '=', m.id)
            .executeTakeFirst();
          if (own) continue;
          const relayed = await provider.relayFound(
            {
              locationId: loc,
              messageId: m.id,
              contactId: r.contact_id,
              body: m.body ?? '',
              attachments: (m.attachments ?? []).filter((x): x is string => typeof x === 'string'),
              userId: mm.userId,
              phone: r.phone ?? undefined,
            },
            'chat_reconcile',
          );
          if (relayed) {
            res.repaired++;
            repaired.inc({ location: loc });
          }
        }
        if (older || !p.nextPage || !p.lastMessageId) break;
        lastMessageId = p.lastMessageId;
      }
    } catch (e) {
      res.errors++;
      rt.log.warn({ err: e, locationId: loc }, 'chat reconcile of a conversation failed; the next run tries again');
    }
  }
  return res;
}
