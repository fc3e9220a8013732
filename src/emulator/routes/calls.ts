import type { FastifyInstance } from 'fastify';
import { assertLocationAccess, type AuthContext } from '../auth.js';
import {
  callExtras,
  createCall,
  fireWorkflowWebhook,
  standardWorkflowPayload,
  type CreateCallInput,
} from '../calls.js';
import type { Ctx } from '../context.js';
import { badRequest, notFound } from '../errors.js';
import { messageToApi } from '../messaging.js';
import type { Message } from '../state.js';
import { op, params } from './util.js';

const MRD = { version: '2021-04-15', scopes: ['conversations/message.readonly'], access: 'location' } as const;

/**
 * Recording and transcription of call messages (conversations.json get-message-recording,
 * get-message-transcription, download-message-transcription) and the control actions of calls under /_emulator.
 * A message without a recording, or a transcript not ready yet (or never), answers 404 (GHL's exact answer for
 * "not ready" is not documented; issue 15 names 404).
 */
export function registerCallRoutes(app: FastifyInstance, ctx: Ctx): void {
  const callMsg = (auth: AuthContext, locationId: string, messageId: string): Message => {
    assertLocationAccess(ctx, auth, locationId);
    const m = ctx.state.messages.get(messageId);
    if (!m || m.locationId !== locationId) throw badRequest('Message not found');
    return m;
  };
  const readyTranscript = (m: Message) => {
    const x = callExtras(ctx.state).get(m.id);
    if (!x?.transcript || x.transcriptReadyAt === null || ctx.clock.now() < x.transcriptReadyAt)
      throw notFound('Transcription not found');
    return x.transcript;
  };

  op(app, ctx, 'GET', '/conversations/messages/:messageId/locations/:locationId/recording', MRD, (req, reply, auth) => {
    const p = params(req);
    const m = callMsg(auth, p.locationId ?? '', p.messageId ?? '');
    const x = callExtras(ctx.state).get(m.id);
    if (x?.largeRecording)
      return reply
        .header('content-type', 'audio/x-wav')
        .header('content-length', String(x.largeRecording.bytes))
        .header('content-disposition', 'attachment; filename=audio.wav')
        .send(x.largeRecording.stream(reply.raw));
    const rec = x?.recording;
    if (!rec) throw notFound('Recording not found');
    return reply
      .header('content-type', 'audio/x-wav')
      .header('content-disposition', 'attachment; filename=audio.wav')
      .send(rec);
  });

  op(
    app,
    ctx,
    'GET',
    '/conversations/locations/:locationId/messages/:messageId/transcription',
    MRD,
    (req, _r, auth) => {
      const p = params(req);
      return readyTranscript(callMsg(auth, p.locationId ?? '', p.messageId ?? ''));
    },
  );

  op(
    app,
    ctx,
    'GET',
    '/conversations/locations/:locationId/messages/:messageId/transcription/download',
    MRD,
    (req, reply, auth) => {
      const p = params(req);
      const t = readyTranscript(callMsg(auth, p.locationId ?? '', p.messageId ?? ''));
      return reply
        .header('content-type', 'text/plain')
        .header('content-disposition', 'attachment; filename="transcription.txt"')
        .send(t.map((s) => s.transcript).join('\n'));
    },
  );

  // Control actions (not GHL).
  const p = '/_emulator';
  const fail = (e: unknown) => ({ statusCode: 400, message: e instanceof Error ? e.message : String(e) });
  /** A call made in GHL: creates the TYPE_CALL message (+ recording, transcript) and sends Inbound/OutboundMessage. */
  app.post(`${p}/calls`, async (req, reply) => {
    try {
      const { message, extras } = createCall(ctx, (req.body ?? {}) as CreateCallInput);
      return await reply.code(201).send({
        messageId: message.id,
        conversationId: message.conversationId,
        message: messageToApi(message),
        hasRecording: !!(extras.recording ?? extras.largeRecording),
        transcriptReadyAt: extras.transcriptReadyAt,
      });
    } catch (e) {
      return reply.code(400).send(fail(e));
    }
  });
  /** A large recording's progress: bytes generated and handed on, held, finished (with its SHA-256), needDrain. */
  app.get(`${p}/calls/:messageId/recording-progress`, async (req, reply) => {
    const r = callExtras(ctx.state).get(params(req).messageId ?? '')?.largeRecording;
    if (!r) return reply.code(404).send({ statusCode: 404, message: 'no large recording for this message' });
    return { totalBytes: r.bytes, ...r.progress, needDrain: r.needDrain() };
  });
  /** Lets a held large recording go on. */
  app.post(`${p}/calls/:messageId/recording-release`, async (req, reply) => {
    const r = callExtras(ctx.state).get(params(req).messageId ?? '')?.largeRecording;
    if (!r) return reply.code(404).send({ statusCode: 404, message: 'no large recording for this message' });
    r.release();
    return { ok: true };
  });
  /** Every call message (GHL-made calls and call logs posted by providers), with meta. */
  app.get(`${p}/calls`, async (req) => {
    const q = req.query as { locationId?: string };
    return {
      calls: [...ctx.state.messages.values()]
        .filter((m) => m.channel === 'Call' || m.messageType.includes('CALL'))
        .filter((m) => !q.locationId || m.locationId === q.locationId)
        .map((m) => ({ ...messageToApi(m), call: m.call ?? null })),
    };
  });
  /**
   * The workflow "Webhook" action: POSTs `payload` (or GHL's standard payload for `contactId` + `customData`) to
   * `url`, unsigned, and answers what the receiver answered.
   */
  app.post(`${p}/workflow-webhook`, async (req, reply) => {
    const b = (req.body ?? {}) as {
      url?: string;
      payload?: unknown;
      locationId?: string;
      contactId?: string;
      customData?: Record<string, unknown>;
    };
    try {
      if (!b.url) throw new Error('url is required');
      const payload =
        b.payload ??
        standardWorkflowPayload(ctx, {
          locationId: b.locationId ?? '',
          contactId: b.contactId ?? '',
          ...(b.customData ? { customData: b.customData } : {}),
        });
      return await reply.send(await fireWorkflowWebhook(b.url, payload));
    } catch (e) {
      return reply.code(400).send(fail(e));
    }
  });
}
