/**
 * A real external system for the generic HTTP channel: Fastify on 127.0.0.1:0 that verifies every request with the
 * standardwebhooks library (as a third-party receiver would), records it, and answers from a programmable queue.
 */
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedDelivery {
  webhookId: string | undefined;
  /** Result of standardwebhooks verification with the shared secret. */
  verified: boolean;
  verifyError?: string;
  body: unknown;
  rawBody: string;
  headers: Record<string, string | string[] | undefined>;
}

export type ReceiverAnswer = { status: number; body?: unknown; headers?: Record<string, string> } | { hang: true };

export interface FakeReceiver {
  url: string;
  received: ReceivedDelivery[];
  /** Queue answers for the next requests; when empty, answers 200 `{}`. */
  answer(...answers: ReceiverAnswer[]): void;
  /** Distinct webhook-ids seen (a receiver dedupes on these). */
  uniqueIds(): Set<string>;
  close(): Promise<void>;
}

export async function startFakeReceiver(secret: string, path = '/ghl/outbound'): Promise<FakeReceiver> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const wh = new Webhook(secret);
  const received: ReceivedDelivery[] = [];
  const queue: ReceiverAnswer[] = [];
  const hangers = new Set<() => void>();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.post(path, async (req, reply) => {
    const rawBody = typeof req.body === 'string' ? req.body : '';
    let verified = false;
    let verifyError: string | undefined;
    let body: unknown;
    try {
      body = wh.verify(rawBody, req.headers as Record<string, string>);
      verified = true;
    } catch (e) {
      verifyError = e instanceof Error ? e.message : String(e);
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
    }
    const webhookId = req.headers['webhook-id'];
    received.push({
      webhookId: typeof webhookId === 'string' ? webhookId : undefined,
      verified,
      ...(verifyError ? { verifyError } : {}),
      body,
      rawBody,
      headers: { ...req.headers },
    });
    if (!verified) return reply.code(401).send({ error: { code: 'BAD_SIGNATURE', message: verifyError } });
    const next = queue.shift() ?? { status: 200, body: {} };
    if ('hang' in next) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          hangers.delete(done);
          resolve();
        };
        const t = setTimeout(done, 120_000);
        hangers.add(done);
      });
      return reply.code(504).send({});
    }
    for (const [k, v] of Object.entries(next.headers ?? {})) reply.header(k, v);
    return reply
      .code(next.status)
      .send(next.body === undefined ? '' : typeof next.body === 'string' ? next.body : JSON.stringify(next.body));
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    answer: (...a) => void queue.push(...a),
    uniqueIds: () => new Set(received.map((r) => r.webhookId).filter((x): x is string => x !== undefined)),
    async close() {
      for (const h of [...hangers]) h();
      await app.close();
    },
  };
}
