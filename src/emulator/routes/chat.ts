import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { assertLocationAccess } from '../auth.js';
import type { Ctx } from '../context.js';
import { badRequest } from '../errors.js';
import type { State } from '../state.js';
import { parseBody } from '../validate.js';
import { op } from './util.js';
import { addDropRule, type DropRule } from '../drop-rules.js';

const V = '2021-04-15';
const MWR = { version: V, scopes: ['conversations/message.write'], access: 'location' } as const;

/** A live-chat typing indicator as GHL received it (inspection: GET /_emulator/typing). */
export interface TypingEvent {
  locationId: string;
  conversationId: string;
  visitorId: string;
  isTyping: boolean;
  at: number;
}

/** Kept beside the state (reset with it), so State itself needs no field for it. */
const typingLog = new WeakMap<State, TypingEvent[]>();
export const typingEvents = (ctx: Ctx): TypingEvent[] => {
  let l = typingLog.get(ctx.state);
  if (!l) typingLog.set(ctx.state, (l = []));
  return l;
};

// Every field is a required string in the spec (isTyping too: 'true' | 'false').
const TypingBody = z.object({
  locationId: z.string().min(1),
  isTyping: z.enum(['true', 'false']),
  visitorId: z.string().min(1),
  conversationId: z.string().min(1),
});

/** Chat operations (issue 13): the live-chat typing indicator. */
export function registerChatRoutes(app: FastifyInstance, ctx: Ctx): void {
  op(app, ctx, 'POST', '/conversations/providers/live-chat/typing', MWR, (req, reply, auth) => {
    const b = parseBody(TypingBody, req.body);
    assertLocationAccess(ctx, auth, b.locationId);
    const conv = ctx.state.conversations.get(b.conversationId);
    if (!conv || conv.deleted || conv.locationId !== b.locationId) throw badRequest('Conversation not found');
    typingEvents(ctx).push({
      locationId: b.locationId,
      conversationId: b.conversationId,
      visitorId: b.visitorId,
      isTyping: b.isTyping === 'true',
      at: ctx.clock.now(),
    });
    // The spec declares 201 for it.
    return reply.code(201).send({ success: true });
  });
}

/** Control routes of the chat additions (not part of GHL). */
export function registerChatControlRoutes(app: FastifyInstance, getCtx: () => Ctx): void {
  app.post('/_emulator/webhooks/drop-matching', async (req, reply) => {
    const b = (req.body ?? {}) as DropRule;
    if (b.count !== undefined && (!Number.isInteger(b.count) || b.count < 1))
      return reply.code(400).send({ statusCode: 400, message: 'count must be a positive integer' });
    addDropRule(getCtx(), b);
    return { ok: true };
  });
  app.get('/_emulator/typing', async () => typingEvents(getCtx()));
}
