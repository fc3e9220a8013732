import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../clock.js';
import type { EmulatorControl } from '../control.js';
import { OAuthError } from '../oauth-service.js';
import { params, query } from './util.js';

type B = Record<string, unknown>;

/** HTTP mirror of EmulatorControl under /_emulator (not part of GHL). Errors: 400 {statusCode,message}. */
export function registerControlRoutes(
  app: FastifyInstance,
  control: EmulatorControl,
  extra: { clock: Clock; keys: { ed25519PublicKeyPem: string; rsaPublicKeyPem: string }; idle: () => Promise<void> },
): void {
  const wrap =
    (fn: (body: B, req: FastifyRequest) => unknown, code = 200) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        const out = await fn((req.body ?? {}) as B, req);
        return reply.code(code).send(out ?? { ok: true });
      } catch (e) {
        if (e instanceof OAuthError) return reply.code(e.status).send(e.body);
        return reply.code(400).send({ statusCode: 400, message: e instanceof Error ? e.message : String(e) });
      }
    };
  const c = control;
  const p = '/_emulator';
  app.get(`${p}/keys`, async () => extra.keys);
  app.get(`${p}/clock`, async () => ({ now: extra.clock.now(), iso: new Date(extra.clock.now()).toISOString() }));
  app.post(
    `${p}/clock/advance`,
    wrap((b) => ({ now: c.advanceClock(Number(b.ms)) })),
  );
  app.post(
    `${p}/reset`,
    wrap(() => c.reset()),
  );
  app.get(
    `${p}/idle`,
    wrap(async () => {
      await extra.idle();
      return { idle: true };
    }),
  );

  app.post(
    `${p}/agencies`,
    wrap((b) => c.createAgency(b as Parameters<typeof c.createAgency>[0]), 201),
  );
  app.post(
    `${p}/locations`,
    wrap((b) => c.createLocation(b as Parameters<typeof c.createLocation>[0]), 201),
  );
  app.patch(
    `${p}/locations/:locationId`,
    wrap((b, r) => c.updateLocation(params(r).locationId ?? '', b)),
  );
  app.post(
    `${p}/users`,
    wrap((b) => c.createUser(b as Parameters<typeof c.createUser>[0]), 201),
  );
  app.post(
    `${p}/apps`,
    wrap((b) => c.createApp(b as unknown as Parameters<typeof c.createApp>[0]), 201),
  );
  app.patch(
    `${p}/apps/:clientId`,
    wrap((b, r) => c.updateApp(params(r).clientId ?? '', b)),
  );
  app.post(
    `${p}/authorize`,
    wrap((b) => c.authorize(b as unknown as Parameters<typeof c.authorize>[0])),
  );
  app.post(
    `${p}/install`,
    wrap((b) => c.install(b as unknown as Parameters<typeof c.install>[0])),
  );
  app.post(
    `${p}/uninstall`,
    wrap((b) => c.uninstall(b as Parameters<typeof c.uninstall>[0])),
  );
  app.post(
    `${p}/provider`,
    wrap((b) => c.setProvider(b as Parameters<typeof c.setProvider>[0])),
  );
  app.post(
    `${p}/contacts`,
    wrap((b) => c.createContact(b as unknown as Parameters<typeof c.createContact>[0]), 201),
  );
  app.post(
    `${p}/contacts/bulk`,
    wrap((b) => c.bulkCreateContacts(b as unknown as Parameters<typeof c.bulkCreateContacts>[0]), 201),
  );
  app.post(
    `${p}/send-message`,
    wrap((b) => c.sendMessageAsUser(b as Parameters<typeof c.sendMessageAsUser>[0]), 201),
  );

  app.get(
    `${p}/state`,
    wrap(() => ({
      agencies: c.listAgencies(),
      locations: c.listLocations(),
      apps: c.listApps(),
      installations: c.listInstallations(),
      contacts: c.listContacts(),
      conversations: c.listConversations(),
      messages: c.listMessages(),
      deliveries: c.listDeliveries(),
      faults: c.listFaults(),
    })),
  );
  app.get(
    `${p}/contacts`,
    wrap((_b, r) => c.listContacts(query(r))),
  );
  app.get(
    `${p}/conversations`,
    wrap((_b, r) => c.listConversations(query(r))),
  );
  app.get(
    `${p}/messages`,
    wrap((_b, r) => c.listMessages(query(r))),
  );
  app.get(
    `${p}/messages/:id`,
    wrap((_b, r) => {
      const m = c.getMessage(params(r).id ?? '');
      if (!m) throw new Error('message not found');
      return m;
    }),
  );
  app.get(
    `${p}/deliveries`,
    wrap((_b, r) => c.listDeliveries(query(r))),
  );
  app.get(
    `${p}/api-calls`,
    wrap((_b, r) => c.listApiCalls(query(r))),
  );
  app.get(
    `${p}/installations`,
    wrap((_b, r) => c.listInstallations(query(r))),
  );

  app.post(
    `${p}/faults`,
    wrap((b) => c.injectFault(b as unknown as Parameters<typeof c.injectFault>[0]), 201),
  );
  app.post(
    `${p}/revoke`,
    wrap((b) => ({ revoked: c.revokeToken(String(b.token)) })),
  );
  app.post(
    `${p}/webhooks/drop`,
    wrap((b) => c.dropWebhooks(Number(b.n ?? b.count ?? 1))),
  );
  app.post(
    `${p}/webhooks/delay`,
    wrap((b) => c.delayWebhooks(Number(b.ms ?? 0))),
  );
}
