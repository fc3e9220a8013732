/**
 * Two-way chat sync (issue 13): an external chat / contact-center product mirrored into GHL conversations, replies
 * back through the location's channel, no echoes, missed-event repair. See the README section "Two-way chat sync".
 *
 * Public API
 * - `chatModule(opts?)` → BridgeModule (after provider in src/modules.ts). Routes: /v1/locations/:locationId/chat/*
 *   (messages, history, status, typing, lookup), guarded by the API-key service (`apiKeys`).
 * - service `chat: ChatService` — `reconcile()` (missed-event repair now).
 */
import { sql } from 'kysely';
import { Counter } from 'prom-client';
import type { AppContext, BridgeModule } from '../../app.js';
import { webhooksService } from '../../platform/webhooks/index.js';
import { considerReply, forwardJob } from './forward.js';
import { chatMigration, chatRepliesMigration } from './migration.js';
import { reconcile, type ReconcileResult, type ReconcileSettings } from './reconcile.js';
import { registerChatRoutes } from './routes.js';
import { outboundDecorator, postJob, statusJob, typingJob, type ChatMessageType, type ChatRuntime } from './sync.js';

export { JOB_CHAT_POST, JOB_CHAT_STATUS, JOB_CHAT_TYPING, chatTypeFor, clientKey } from './sync.js';
export { JOB_CHAT_FORWARD } from './forward.js';
export type { ReconcileResult, ReconcileSettings } from './reconcile.js';

export interface ChatService {
  /** Missed-event repair now (also every CHAT_RECONCILE_INTERVAL_MS). */
  reconcile(o?: { locationId?: string; signal?: AbortSignal }): Promise<ReconcileResult>;
}

declare module '../../app.js' {
  interface Services {
    /** Provided by the chat module. */
    chat: ChatService;
  }
}

export interface ChatModuleOptions {
  reconcile?: Partial<ReconcileSettings>;
  messageType?: ChatMessageType;
}

export function chatModule(opts: ChatModuleOptions = {}): BridgeModule {
  let rt: ChatRuntime | undefined;
  return {
    name: 'chat',
    migrations: { '0010_chat': chatMigration, '0011_chat_replies': chatRepliesMigration },
    init(ctx: AppContext) {
      const c = ctx.config;
      const log = ctx.log.child({ component: 'chat' });
      const echoes = new Counter({
        name: 'ghl_bridge_chat_echoes_dropped_total',
        help: 'Echoes suppressed: to_chat = a GHL message the bridge created, never sent back to the chat product; ghl_event = GHL’s own InboundMessage/OutboundMessage event of a message the bridge created, matched and dropped',
        labelNames: ['direction'],
        registers: [ctx.metrics.registry],
      });
      const posted = new Counter({
        name: 'ghl_bridge_chat_messages_posted_total',
        help: 'Chat messages posted into GHL, by kind (inbound, outbound = agent, history)',
        labelNames: ['kind'],
        registers: [ctx.metrics.registry],
      });
      const repaired = new Counter({
        name: 'ghl_bridge_chat_repaired_total',
        help: 'GHL-user replies the chat product never got (missed webhooks), found by the chat reconcile and relayed',
        labelNames: ['location'],
        registers: [ctx.metrics.registry],
      });
      const runtime: ChatRuntime = {
        db: ctx.db,
        log,
        ghl: () => ctx.services.get('ghl'),
        provider: () => ctx.services.get('provider'),
        messageType: opts.messageType ?? c.CHAT_MESSAGE_TYPE,
        fieldName: c.CHAT_CLIENT_ID_FIELD,
        notify: () => ctx.queue.notify(),
        metrics: { echoes, posted },
        forwardOtherChannels: c.CHAT_FORWARD_OTHER_CHANNELS,
        bus: () => {
          const e = ctx.services.find('events');
          return e?.active() ? e : undefined;
        },
      };
      rt = runtime;
      // One location's backlog (e.g. its GHL budget spent) never fills every worker slot.
      const perScope = { maxPerScope: c.WORKER_LOCATION_CONCURRENCY };
      ctx.queue.register(postJob, { deps: runtime, ...perScope });
      ctx.queue.register(statusJob, { deps: runtime, ...perScope });
      ctx.queue.register(typingJob, { deps: runtime });
      ctx.queue.register(forwardJob, { deps: runtime, ...perScope });
      ctx.services.get('provider').setOutboundDecorator(outboundDecorator(runtime));

      // GHL's own events for messages the bridge created: matched by the recorded GHL id and dropped.
      const webhooks = webhooksService(ctx);
      const dropOwn = async (evt: { payload: Record<string, unknown> }) => {
        const id = evt.payload.messageId;
        if (typeof id !== 'string' || !id) return;
        const own = await ctx.db
          .selectFrom('chat_messages')
          .select('message_id')
          .where('ghl_message_id', '=', id)
          .executeTakeFirst();
        if (own) echoes.inc({ direction: 'ghl_event' });
      };
      webhooks.on('InboundMessage', dropOwn, { name: 'chat.drop-own-events', orderingKey: () => null });
      // OutboundMessage: the bridge's own messages are dropped (counted); a GHL user's reply to a linked contact on
      // another channel (or on Live Chat for Live_Chat clients) is recorded and forwarded (forward.ts).
      const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
      webhooks.on(
        'OutboundMessage',
        async (evt) => {
          const p = evt.payload;
          const messageId = str(p.messageId);
          const locationId = str(p.locationId) ?? evt.locationId ?? undefined;
          const contactId = str(p.contactId);
          if (!messageId || !locationId || !contactId) return;
          const to = Array.isArray(p.to) ? p.to.filter((x): x is string => typeof x === 'string') : str(p.to);
          const outcome = await considerReply(runtime, {
            locationId,
            contactId,
            messageId,
            messageType: str(p.messageType) ?? '',
            source: str(p.source),
            conversationProviderId: str(p.conversationProviderId),
            body: typeof p.body === 'string' ? p.body : undefined,
            attachments: Array.isArray(p.attachments)
              ? p.attachments.filter((x): x is string => typeof x === 'string')
              : [],
            userId: str(p.userId),
            subject: str(p.subject),
            emailFrom: str(p.from),
            emailTo: typeof to === 'string' ? [to] : to,
          });
          if (outcome === 'own') echoes.inc({ direction: 'ghl_event' });
        },
        { name: 'chat.outbound-message' },
      );

      const settings: ReconcileSettings = {
        lookbackMs: c.CHAT_RECONCILE_LOOKBACK_MS,
        maxPages: 20,
        ...opts.reconcile,
      };
      const run = async (o: { locationId?: string; signal?: AbortSignal } = {}) => {
        const r = await reconcile(runtime, settings, repaired, o);
        if (r.repaired) log.info(r, 'chat reconcile relayed replies GHL never delivered');
        return r;
      };
      // Finished chat messages and replies follow DATA_RETENTION_DAYS like the provider's (a re-push older than that is
      // posted again).
      if (c.DATA_RETENTION_DAYS > 0)
        ctx.maintain('prune chat messages', 3600_000, async (signal) => {
          let total = 0;
          while (!signal.aborted) {
            const r = await sql`
              delete from chat_messages where (location_id, message_id) in (
                select location_id, message_id from chat_messages
                where state in ('posted', 'failed') and received_at < ${new Date(Date.now() - c.DATA_RETENTION_DAYS * 86_400_000)}
                limit 5000)`.execute(ctx.db);
            const n = Number(r.numAffectedRows ?? 0);
            total += n;
            if (n < 5000) break;
          }
          // Replies handed to the chat product, likewise, but never inside the reconcile's look-back (it would find a
          // reply without its record and forward it again).
          const repliesCutoff = new Date(
            Date.now() - Math.max(c.DATA_RETENTION_DAYS * 86_400_000, c.CHAT_RECONCILE_LOOKBACK_MS),
          );
          while (!signal.aborted) {
            const r = await sql`
              delete from chat_replies where ghl_message_id in (
                select ghl_message_id from chat_replies
                where state in ('sent', 'failed') and received_at < ${repliesCutoff}
                limit 5000)`.execute(ctx.db);
            const n = Number(r.numAffectedRows ?? 0);
            total += n;
            if (n < 5000) break;
          }
          return total;
        });
      if (c.CHAT_RECONCILE_INTERVAL_MS > 0)
        ctx.maintain('chat reconcile', c.CHAT_RECONCILE_INTERVAL_MS, (signal) =>
          run({ signal }).then((r) => r.repaired),
        );
      ctx.services.provide('chat', { reconcile: run });
    },
    routes(app, ctx) {
      registerChatRoutes(app, ctx, () => rt!.notify(), rt!.messageType);
    },
  };
}
