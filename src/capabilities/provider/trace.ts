import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { ChannelError } from '../channels/index.js';
import './tables.js';

/**
 * Read-only views of the provider's tables for the operator console (message trace, per-location activity). Nothing
 * here changes state; secrets are not in these tables (channel secrets live in provider_channels, not read here).
 */

export interface OutboundMatch {
  direction: 'outbound';
  messageId: string;
  locationId: string;
  contactId: string;
  type: string;
  state: string;
  receivedAt: Date;
}

export interface InboundMatch {
  direction: 'inbound';
  id: number;
  messageId: string | null;
  locationId: string;
  contactId: string | null;
  address: string;
  state: string;
  receivedAt: Date;
}

/** Messages matching a GHL message id, contact id, phone or e-mail address (newest first). */
export async function searchMessages(db: Db, q: string, limit = 50): Promise<Array<OutboundMatch | InboundMatch>> {
  const term = q.trim();
  if (!term) return [];
  const out = await db
    .selectFrom('provider_outbound')
    .select(['message_id', 'location_id', 'contact_id', 'channel', 'state', 'received_at'])
    .where((eb) =>
      eb.or([
        eb('message_id', '=', term),
        eb('contact_id', '=', term),
        eb(sql<string>`payload->>'phone'`, '=', term),
        eb(sql<string>`payload->>'emailTo'`, '=', term),
        eb(sql<string>`payload->>'emailTo'`, '=', JSON.stringify([term])),
      ]),
    )
    .orderBy('received_at', 'desc')
    .limit(limit)
    .execute();
  const inb = await db
    .selectFrom('provider_inbound')
    .select(['id', 'ghl_message_id', 'location_id', 'contact_id', 'address', 'state', 'received_at'])
    .where((eb) =>
      eb.or([
        eb('ghl_message_id', '=', term),
        eb('contact_id', '=', term),
        eb('address', '=', term),
        eb('channel_message_id', '=', term),
      ]),
    )
    .orderBy('received_at', 'desc')
    .limit(limit)
    .execute();
  return [
    ...out.map((r): OutboundMatch => ({
      direction: 'outbound',
      messageId: r.message_id,
      locationId: r.location_id,
      contactId: r.contact_id,
      type: r.channel,
      state: r.state,
      receivedAt: r.received_at,
    })),
    ...inb.map((r): InboundMatch => ({
      direction: 'inbound',
      id: r.id,
      messageId: r.ghl_message_id,
      locationId: r.location_id,
      contactId: r.contact_id,
      address: r.address,
      state: r.state,
      receivedAt: r.received_at,
    })),
  ].sort((a, b) => b.receivedAt.getTime() - a.receivedAt.getTime());
}

export interface TraceStep {
  step: 'received' | 'confirmed' | 'rejected' | 'claimed' | 'attempt' | 'sent' | 'failed' | 'receipt' | 'reported';
  at: Date | null;
  detail: string;
  error: string | null;
}

export interface OutboundTrace {
  messageId: string;
  locationId: string;
  contactId: string;
  type: string;
  state: string;
  channelKind: string | null;
  channelMessageId: string | null;
  attempts: number;
  statusAttempts: number;
  statusTarget: string | null;
  ghlStatus: string | null;
  confirmedBy: string | null;
  steps: TraceStep[];
}

/** The provider's side of one outbound message's life, in order (webhook steps are added by the caller). */
export async function outboundTrace(db: Db, messageId: string): Promise<OutboundTrace | undefined> {
  const r = await db.selectFrom('provider_outbound').selectAll().where('message_id', '=', messageId).executeTakeFirst();
  if (!r) return undefined;
  const conf = await db
    .selectFrom('provider_confirmations')
    .select(['event_id', 'received_at', 'direction'])
    .where('message_id', '=', messageId)
    .executeTakeFirst();
  const err = r.error as ChannelError | null;
  const steps: TraceStep[] = [
    {
      step: 'received',
      at: r.received_at,
      detail: `GHL delivered the ${r.channel} message to the Delivery URL`,
      error: null,
    },
  ];
  if (r.rejected_reason)
    steps.push({ step: 'rejected', at: r.updated_at, detail: 'not sent', error: r.rejected_reason });
  else if (r.confirmed_by)
    steps.push({
      step: 'confirmed',
      at: conf?.received_at ?? null,
      detail: `confirmed by ${r.confirmed_by}${conf?.event_id ? ` (webhook event ${conf.event_id})` : ''}`,
      error: null,
    });
  if (r.send_started_at)
    steps.push({
      step: 'claimed',
      at: r.send_started_at,
      detail: `send job claimed; channel ${r.channel_kind ?? '?'}, attempt ${r.attempts}`,
      error: null,
    });
  // Each channel send attempt, as recorded with it (every replica's): the channel's answer code and error.
  for (const a of r.send_log ?? [])
    steps.push({
      step: 'attempt',
      at: new Date(a.at),
      detail: `channel send attempt ${a.attempt}: ${a.outcome}${a.code ? ` (${a.code})` : ''}`,
      error: a.error,
    });
  if (r.sent_at)
    steps.push({
      step: 'sent',
      at: r.sent_at,
      detail: `channel accepted after ${r.attempts} attempt(s)${r.channel_message_id ? `, channel id ${r.channel_message_id}` : ''}`,
      error: null,
    });
  if (err || (r.state === 'failed' && r.last_error))
    steps.push({
      step: 'failed',
      at: r.updated_at,
      detail: err ? `channel answered ${err.code} (${err.type})` : `failed after ${r.attempts} attempt(s)`,
      error: err?.message ?? r.last_error,
    });
  else if (r.last_error && !r.sent_at)
    steps.push({ step: 'failed', at: r.updated_at, detail: `attempt ${r.attempts} failed`, error: r.last_error });
  if (r.status_target && r.target_at && r.status_target !== 'failed' && r.status_target !== 'pending')
    steps.push({ step: 'receipt', at: r.target_at, detail: `channel status ${r.status_target}`, error: null });
  if (r.reported_at)
    steps.push({
      step: 'reported',
      at: r.reported_at,
      detail: `GHL accepted status ${r.ghl_status ?? '?'}${r.status_attempts ? ` after ${r.status_attempts} refused call(s)` : ''}`,
      error: null,
    });
  else if (r.status_target)
    steps.push({
      step: 'reported',
      at: null,
      detail: `status ${r.status_target} not yet accepted by GHL (${r.status_attempts} call(s))`,
      error: r.sent_at ? r.last_error : null,
    });
  return {
    messageId: r.message_id,
    locationId: r.location_id,
    contactId: r.contact_id,
    type: r.channel,
    state: r.state,
    channelKind: r.channel_kind,
    channelMessageId: r.channel_message_id,
    attempts: r.attempts,
    statusAttempts: r.status_attempts,
    statusTarget: r.status_target,
    ghlStatus: r.ghl_status,
    confirmedBy: r.confirmed_by,
    steps,
  };
}

export interface LocationActivity {
  locationId: string;
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  lastFailure: string | null;
  outbound24h: number;
  failed24h: number;
}

/** Per location: the channel's last success and failure and the last day's counts. */
export async function locationActivity(db: Db, locationId?: string): Promise<LocationActivity[]> {
  let q = db
    .selectFrom('provider_outbound')
    .select((eb) => [
      'location_id',
      eb.fn.max('sent_at').as('last_success'),
      eb.fn.max(sql<Date>`case when state = 'failed' then updated_at end`).as('last_failure'),
      eb.fn.count<string>(sql`case when received_at > now() - interval '1 day' then 1 end`).as('n24'),
      eb.fn
        .count<string>(sql`case when state = 'failed' and received_at > now() - interval '1 day' then 1 end`)
        .as('f24'),
    ])
    .groupBy('location_id');
  if (locationId) q = q.where('location_id', '=', locationId);
  const rows = await q.execute();
  const lastErrors = await recentFailures(db, locationId, 200);
  return rows.map((r) => ({
    locationId: r.location_id,
    lastSuccessAt: r.last_success ? new Date(r.last_success as unknown as string) : null,
    lastFailureAt: r.last_failure ? new Date(r.last_failure as unknown as string) : null,
    lastFailure: lastErrors.find((e) => e.locationId === r.location_id)?.error ?? null,
    outbound24h: Number(r.n24),
    failed24h: Number(r.f24),
  }));
}

/** The latest failed or erroring messages (of one location, or all). */
export async function recentFailures(
  db: Db,
  locationId: string | undefined,
  limit = 20,
): Promise<Array<{ messageId: string; locationId: string; state: string; at: Date; error: string }>> {
  let q = db
    .selectFrom('provider_outbound')
    .select(['message_id', 'location_id', 'state', 'updated_at', 'last_error', 'error', 'rejected_reason'])
    .where((eb) => eb.or([eb('state', 'in', ['failed', 'rejected']), eb('last_error', 'is not', null)]));
  if (locationId) q = q.where('location_id', '=', locationId);
  const rows = await q.orderBy('updated_at', 'desc').limit(limit).execute();
  return rows.map((r) => {
    const err = r.error as ChannelError | null;
    return {
      messageId: r.message_id,
      locationId: r.location_id,
      state: r.state,
      at: r.updated_at,
      error: err ? `${err.code}: ${err.message}` : (r.rejected_reason ?? r.last_error ?? 'failed'),
    };
  });
}
