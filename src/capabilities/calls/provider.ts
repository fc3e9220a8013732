import { sql } from 'kysely';
import { z } from 'zod';
import { normalizeE164 } from '../channels/index.js';
import { defineJob, PermanentJobError, PRIORITY, type DbOrTrx, type JobContext } from '../../infra/queue/index.js';
import type { GhlClient } from '../../platform/ghl/client.js';
import { GhlApiError } from '../../platform/ghl/errors.js';
import { locationKey } from '../../platform/keys.js';
import type { CallStatus } from './mapping.js';
import { json } from './records.js';
import type { CallsRuntime } from './process.js';

export const JOB_PROVIDER_POST = 'calls.provider-post';

export interface ProviderLogInput {
  callId: string;
  direction: 'inbound' | 'outbound';
  from: string;
  to: string;
  status: CallStatus;
  durationSec?: number | undefined;
  recordingUrl?: string | undefined;
  voicemailUrl?: string | undefined;
  startedAt?: string | undefined;
  userId?: string | undefined;
}

export interface ProviderRuntime extends CallsRuntime {
  /** The app's Call provider id (CALLS_CONVERSATION_PROVIDER_ID, default GHL_CONVERSATION_PROVIDER_ID). */
  conversationProviderId: string | undefined;
}

/** Stores a posted call log once per (location, callId) and enqueues its posting to GHL. */
export async function storeProviderLog(
  trx: DbOrTrx,
  locationId: string,
  input: ProviderLogInput,
): Promise<{
  id: number;
  callId: string;
  state: 'received' | 'posted' | 'failed';
  duplicate: boolean;
  ghlMessageId: string | null;
}> {
  const ins = await trx
    .insertInto('calls_provider_logs')
    .values({ location_id: locationId, external_id: input.callId, request: json(input) })
    .onConflict((oc) => oc.columns(['location_id', 'external_id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (ins) {
    const id = Number(ins.id);
    const party = input.direction === 'inbound' ? input.from : input.to;
    await providerPostJob.enqueue(
      trx,
      { id },
      { orderingKey: `calls:${locationId}:phone:${party.replace(/[^\d+]/g, '')}`, scope: locationKey(locationId) },
    );
    return { id, callId: input.callId, state: 'received', duplicate: false, ghlMessageId: null };
  }
  const row = await trx
    .selectFrom('calls_provider_logs')
    .select(['id', 'state', 'ghl_message_id'])
    .where('location_id', '=', locationId)
    .where('external_id', '=', input.callId)
    .executeTakeFirstOrThrow();
  return {
    id: Number(row.id),
    callId: input.callId,
    state: row.state,
    duplicate: true,
    ghlMessageId: row.ghl_message_id,
  };
}

async function conversationOf(
  ghl: GhlClient,
  locationId: string,
  contactId: string,
  opts: { installation: { locationId: string }; signal: AbortSignal },
) {
  const search = async () =>
    (await ghl.conversations.search({ locationId, contactId, limit: 1 }, opts)).conversations?.[0]?.id;
  const found = await search();
  if (found) return found;
  try {
    const r = await ghl.conversations.create({ locationId, contactId }, opts);
    if (r.conversation?.id) return r.conversation.id;
  } catch (e) {
    if (!(e instanceof GhlApiError) || e.status !== 400) throw e;
    const b = e.body as { conversationId?: string } | undefined;
    if (b?.conversationId) return b.conversationId;
  }
  const again = await search();
  if (again) return again;
  throw new Error('conversation create answered without an id');
}

/**
 * `calls.provider-post`: the call log into GHL. GHL requires the number to match an existing contact, so the remote
 * party (from for inbound, to for outbound) is upserted by phone first, then its conversation found or created; then
 * Add Inbound Message (type Call, direction inbound, the `call` object) or Add External Outbound Call. The recording
 * or voicemail URL goes in `attachments`. The log's callId is the message's `altId`: after an ambiguous failure the
 * conversation's call messages are searched for it, so a retry never posts the log twice.
 */
export const providerPostJob = defineJob<{ id: number }, ProviderRuntime>({
  kind: JOB_PROVIDER_POST,
  payload: z.object({ id: z.number().int() }),
  priority: PRIORITY.normal,
  maxAttempts: 12,
  perform: (p, _job, h) => postLog(h.deps, p.id, h),
  onFailed: async (p, _job, err, h) => {
    await h.db
      .updateTable('calls_provider_logs')
      .set({
        state: 'failed',
        last_error: String((err as Error)?.message ?? err).slice(0, 1000),
        updated_at: sql`now()`,
      })
      .where('id', '=', p.id)
      .where('state', '=', 'received')
      .execute();
  },
});

async function postLog(rt: ProviderRuntime, id: number, h: JobContext<ProviderRuntime>): Promise<void> {
  const row = await rt.db.selectFrom('calls_provider_logs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || row.state !== 'received') return;
  const req = row.request as unknown as ProviderLogInput;
  const loc = row.location_id;
  if (!rt.conversationProviderId)
    throw new PermanentJobError('no Call conversation provider id: set CALLS_CONVERSATION_PROVIDER_ID');
  const ghl = rt.ghl();
  const opts = { installation: { locationId: loc }, lane: 'live' as const, signal: h.signal };
  const e164 = (n: string) => {
    const r = normalizeE164(n, 'US');
    if (!r.ok) throw new PermanentJobError(`not a phone number: ${r.error.message}`);
    return r.e164;
  };
  const from = e164(req.from);
  const to = e164(req.to);
  try {
    let contactId = row.contact_id;
    if (!contactId) {
      const r = await ghl.contacts.upsert(
        { locationId: loc, phone: req.direction === 'inbound' ? from : to, source: 'ghl-bridge calls' },
        opts,
      );
      contactId = r.contact?.id ?? null;
      if (!contactId) throw new Error('contact upsert answered without a contact id');
      await rt.db.updateTable('calls_provider_logs').set({ contact_id: contactId }).where('id', '=', id).execute();
    }
    const conversationId = row.conversation_id ?? (await conversationOf(ghl, loc, contactId, opts));
    if (!row.conversation_id)
      await rt.db
        .updateTable('calls_provider_logs')
        .set({ conversation_id: conversationId })
        .where('id', '=', id)
        .execute();
    const attachments = [req.recordingUrl, req.voicemailUrl].filter((x): x is string => !!x);
    const call = { from, to, status: req.status };
    // After an ambiguous failure: did GHL add it? (the log's id is the message's altId)
    const verify = async () => {
      for await (const m of ghl.messages.iterate(conversationId, { type: 'TYPE_CALL', limit: 100 }, opts)) {
        if ((m as { altId?: string }).altId === req.callId) return { messageId: m.id, conversationId };
      }
      return undefined;
    };
    const common = {
      conversationId,
      conversationProviderId: rt.conversationProviderId,
      attachments,
      altId: req.callId,
      call,
      ...(req.startedAt ? { date: req.startedAt } : {}),
    };
    const res =
      req.direction === 'inbound'
        ? await ghl.messages.addInbound(
            { type: 'Call', contactId, direction: 'inbound', ...common },
            { ...opts, verify },
          )
        : await ghl.messages.addOutboundCall({ type: 'Call', ...common }, { ...opts, verify });
    const messageId = (res as { messageId?: string }).messageId ?? null;
    if (!messageId) throw new Error('GHL answered without a messageId (the call log may not have been added)');
    await rt.db
      .updateTable('calls_provider_logs')
      .set({
        state: 'posted',
        ghl_message_id: messageId,
        last_error: null,
        attempts: sql`attempts + 1`,
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .execute();
  } catch (e) {
    await rt.db
      .updateTable('calls_provider_logs')
      .set({
        last_error: String((e as Error).message).slice(0, 1000),
        attempts: sql`attempts + 1`,
        updated_at: sql`now()`,
      })
      .where('id', '=', id)
      .execute();
    if (e instanceof GhlApiError && e.status >= 400 && e.status < 500 && e.status !== 429 && e.status !== 401)
      throw new PermanentJobError(`GHL refused the call log: ${e.status} ${e.message}`);
    throw e;
  }
}
