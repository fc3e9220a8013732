import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { assertLocationAccess, type AuthContext } from '../auth.js';
import type { Ctx } from '../context.js';
import { badRequest, unprocessable } from '../errors.js';
import {
  addProcessedMessage,
  conversationCreateToApi,
  conversationSearchRow,
  conversationToApi,
  createConversation,
  messageToApi,
  sendOutbound,
  updateStatus,
} from '../messaging.js';
import type { Conversation, Message } from '../state.js';
import { parseBody } from '../validate.js';
import { exportMessages, type ExportQuery } from '../export.js';
import { callerApp, mustLocation, op, params, query } from './util.js';

const V = '2021-04-15';
const RD = { version: V, scopes: ['conversations.readonly'], access: 'location' } as const;
const WR = { version: V, scopes: ['conversations.write'], access: 'location' } as const;
const MRD = { version: V, scopes: ['conversations/message.readonly'], access: 'location' } as const;
const MWR = { version: V, scopes: ['conversations/message.write'], access: 'location' } as const;

const str = z.string();
const CreateBody = z.object({ locationId: str.min(1), contactId: str.min(1) });
const UpdateBody = z.object({
  locationId: str.min(1),
  unreadCount: z.number().optional(),
  starred: z.boolean().optional(),
});
const SendBody = z.object({
  type: z.enum(['SMS', 'RCS', 'Email', 'WhatsApp', 'IG', 'FB', 'Custom', 'Live_Chat', 'TIKTOK']),
  contactId: str.min(1),
  message: str.optional(),
  html: str.optional(),
  subject: str.optional(),
  attachments: z.array(str).optional(),
  emailFrom: str.optional(),
  emailTo: str.optional(),
  emailCc: z.array(str).optional(),
  emailBcc: z.array(str).optional(),
  conversationProviderId: str.optional(),
  replyMessageId: str.optional(),
  threadId: str.optional(),
  // subType/status are `required` in the current spec but clients do not send them (UNCONFIRMED) → optional here.
  subType: z.unknown().optional(),
  status: z.enum(['delivered', 'failed', 'pending', 'read']).optional(),
  scheduledTimestamp: z.number().optional(),
  fromNumber: str.optional(),
  toNumber: str.optional(),
});
const CallData = z.object({
  to: str.optional(),
  from: str.optional(),
  status: z
    .enum(['pending', 'completed', 'answered', 'busy', 'no-answer', 'failed', 'canceled', 'voicemail'])
    .optional(),
});
const InboundBody = z.object({
  type: z.enum([
    'SMS',
    'RCS',
    'Email',
    'WhatsApp',
    'GMB',
    'IG',
    'FB',
    'Custom',
    'WebChat',
    'Live_Chat',
    'Call',
    'IVR_Call',
    'Campaign_Call',
    'Campaign_VoiceMail',
    'TIKTOK',
    'ALL_IN_ONE_CHAT',
    'FORM_SUBMISSION',
  ]),
  conversationId: str.min(1),
  contactId: str.min(1),
  conversationProviderId: str.min(1).optional(),
  message: str.optional(),
  attachments: z.array(str).optional(),
  html: str.optional(),
  subject: str.optional(),
  emailFrom: str.optional(),
  emailTo: str.optional(),
  emailCc: z.array(str).optional(),
  emailBcc: z.array(str).optional(),
  emailMessageId: str.optional(),
  altId: str.optional(),
  // Spec declares `direction` as an object (SOURCE.md defect); it is a string.
  direction: z.enum(['inbound', 'outbound']).optional(),
  date: str.optional(),
  call: CallData.optional(),
});
const OutboundCallBody = z.object({
  type: z.literal('Call'),
  conversationId: str.min(1),
  conversationProviderId: str.min(1),
  attachments: z.array(str).optional(),
  altId: str.optional(),
  date: str.optional(),
  call: CallData.optional(),
});
const StatusBody = z.object({
  status: z.enum(['delivered', 'failed', 'pending', 'read']),
  error: z.object({ code: str, type: str, message: str }).optional(),
  emailMessageId: str.optional(),
  recipients: z.array(z.unknown()).optional(),
});

export function registerConversationRoutes(app: FastifyInstance, ctx: Ctx): void {
  const convFor = (auth: AuthContext, id: string): Conversation => {
    const c = ctx.state.conversations.get(id);
    if (!c || c.deleted) throw badRequest('Conversation not found');
    assertLocationAccess(ctx, auth, c.locationId);
    return c;
  };
  const msgFor = (auth: AuthContext, id: string): Message => {
    const m = ctx.state.messages.get(id);
    if (!m) throw badRequest('Message not found');
    assertLocationAccess(ctx, auth, m.locationId);
    return m;
  };
  const locId = (auth: AuthContext) => auth.token.locationId ?? '';

  op(app, ctx, 'POST', '/conversations/', WR, (req, reply, auth) => {
    const b = parseBody(CreateBody, req.body);
    assertLocationAccess(ctx, auth, b.locationId);
    const c = createConversation(ctx, b.locationId, b.contactId);
    return reply.code(201).send({ success: true, conversation: conversationCreateToApi(c) });
  });

  op(app, ctx, 'GET', '/conversations/search', RD, (req, _r, auth) => {
    const q = query(req);
    if (!q.locationId) throw unprocessable(['locationId should not be empty']);
    assertLocationAccess(ctx, auth, q.locationId);
    let rows = [...ctx.state.conversations.values()].filter((c) => c.locationId === q.locationId && !c.deleted);
    if (q.contactId) rows = rows.filter((c) => c.contactId === q.contactId);
    if (q.id) rows = rows.filter((c) => c.id === q.id);
    if (q.status === 'unread') rows = rows.filter((c) => c.unreadCount > 0);
    if (q.status === 'read') rows = rows.filter((c) => c.unreadCount === 0);
    if (q.status === 'starred') rows = rows.filter((c) => c.starred);
    if (q.lastMessageDirection) rows = rows.filter((c) => c.lastMessageDirection === q.lastMessageDirection);
    if (q.lastMessageType) rows = rows.filter((c) => c.lastMessageType === q.lastMessageType);
    if (q.query) {
      const needle = q.query.toLowerCase();
      rows = rows.filter((c) => JSON.stringify(conversationSearchRow(ctx, c)).toLowerCase().includes(needle));
    }
    const dir = q.sort === 'asc' ? 1 : -1;
    rows.sort((a, b) => dir * (a.lastMessageDate - b.lastMessageDate) || dir * a.id.localeCompare(b.id));
    const total = rows.length;
    if (q.startAfterDate) {
      const after = Number(q.startAfterDate);
      rows = rows.filter((c) => (dir === -1 ? c.lastMessageDate < after : c.lastMessageDate > after));
    }
    const limit = Math.min(Math.max(Number(q.limit ?? 20) || 20, 1), 100);
    return { conversations: rows.slice(0, limit).map((c) => conversationSearchRow(ctx, c)), total };
  });

  op(app, ctx, 'GET', '/conversations/:conversationId', RD, (req, _r, auth) =>
    conversationToApi(convFor(auth, params(req).conversationId ?? '')),
  );

  op(app, ctx, 'PUT', '/conversations/:conversationId', WR, (req, _r, auth) => {
    const b = parseBody(UpdateBody, req.body);
    const c = convFor(auth, params(req).conversationId ?? '');
    if (b.locationId !== c.locationId) throw badRequest('Conversation not found');
    if (b.unreadCount !== undefined) c.unreadCount = b.unreadCount;
    if (b.starred !== undefined) c.starred = b.starred;
    c.dateUpdated = ctx.clock.now();
    return { success: true, conversation: { ...conversationToApi(c), ...conversationCreateToApi(c) } };
  });

  op(app, ctx, 'DELETE', '/conversations/:conversationId', WR, (req, _r, auth) => {
    const c = convFor(auth, params(req).conversationId ?? '');
    c.deleted = true;
    return { success: true };
  });

  op(app, ctx, 'GET', '/conversations/:conversationId/messages', MRD, (req, _r, auth) => {
    const c = convFor(auth, params(req).conversationId ?? '');
    const q = query(req);
    const types = q.type ? q.type.split(',') : undefined;
    // Newest first (UNCONFIRMED order); creation order breaks ties so pagination is stable.
    let all = [...ctx.state.messages.values()]
      .filter((m) => m.conversationId === c.id && (!types || types.includes(m.messageType)))
      .sort((a, b) => b.dateAdded - a.dateAdded || b.createdAtMs - a.createdAtMs);
    if (q.lastMessageId) {
      const i = all.findIndex((m) => m.id === q.lastMessageId);
      if (i < 0) throw badRequest('Invalid lastMessageId');
      all = all.slice(i + 1);
    }
    const limit = Math.min(Math.max(Number(q.limit ?? 20) || 20, 1), 100);
    const page = all.slice(0, limit);
    const inner = {
      lastMessageId: page.at(-1)?.id ?? '',
      nextPage: all.length > limit,
      messages: page.map(messageToApi),
    };
    return ctx.opts.wrapMessagesResponse ? { messages: inner } : inner;
  });

  op(app, ctx, 'GET', '/conversations/messages/export', MRD, (req, _r, auth) => {
    const q = query(req);
    if (!q.locationId) throw badRequest('locationId should not be empty');
    assertLocationAccess(ctx, auth, q.locationId);
    return exportMessages(ctx, { ...q, locationId: q.locationId } as ExportQuery);
  });

  op(app, ctx, 'GET', '/conversations/messages/:id', MRD, (req, _r, auth) =>
    messageToApi(msgFor(auth, params(req).id ?? '')),
  );

  op(app, ctx, 'POST', '/conversations/messages', MWR, (req, _r, auth) => {
    const b = parseBody(SendBody, req.body);
    const loc = mustLocation(ctx, locId(auth));
    const { message: m, conversation } = sendOutbound(ctx, loc, {
      ...b,
      source: 'api',
      userId: auth.token.userId,
    } as Parameters<typeof sendOutbound>[2]);
    return {
      conversationId: conversation.id,
      messageId: m.id,
      status: m.status === 'pending' ? 'pending' : 'delivered',
      ...(m.emailMessageId ? { emailMessageId: m.emailMessageId } : {}),
      msg: 'Message queued successfully.',
    };
  });

  op(app, ctx, 'POST', '/conversations/messages/inbound', MWR, (req, _r, auth) => {
    const b = parseBody(InboundBody, req.body);
    const m = addProcessedMessage(
      ctx,
      locId(auth),
      callerApp(ctx, auth),
      b as Parameters<typeof addProcessedMessage>[3],
      'inbound',
    );
    return {
      success: true,
      conversationId: m.conversationId,
      messageId: m.id,
      message: 'Message added successfully',
      contactId: m.contactId,
      dateAdded: new Date(m.dateAdded).toISOString(),
      ...(m.emailMessageId ? { emailMessageId: m.emailMessageId } : {}),
    };
  });

  op(app, ctx, 'POST', '/conversations/messages/outbound', MWR, (req, _r, auth) => {
    const b = parseBody(OutboundCallBody, req.body);
    const conv = ctx.state.conversations.get(b.conversationId);
    const m = addProcessedMessage(
      ctx,
      locId(auth),
      callerApp(ctx, auth),
      { ...b, contactId: conv?.contactId ?? '' } as Parameters<typeof addProcessedMessage>[3],
      'outbound-call',
    );
    return {
      success: true,
      conversationId: m.conversationId,
      messageId: m.id,
      message: 'Message added successfully',
      contactId: m.contactId,
      dateAdded: new Date(m.dateAdded).toISOString(),
    };
  });

  op(app, ctx, 'PUT', '/conversations/messages/:messageId/status', MWR, (req, _r, auth) => {
    const b = parseBody(StatusBody, req.body);
    const m = msgFor(auth, params(req).messageId ?? '');
    updateStatus(ctx, callerApp(ctx, auth), m, b);
    return {
      conversationId: m.conversationId,
      messageId: m.id,
      status: b.status,
      ...(m.emailMessageId ? { emailMessageId: m.emailMessageId } : {}),
    };
  });
}
