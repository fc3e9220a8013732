import type { FastifyInstance } from 'fastify';
import { GhlApiError } from '../ghl/errors.js';
import { OAuthStateError, type InstallationsService } from './service.js';

export const INSTALL_PATH = '/oauth/install';
export const CALLBACK_PATH = '/oauth/callback';

const page = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:sans-serif;max-width:40em;margin:4em auto"><h1>${title}</h1><p>${text}</p></body>`;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Printable ASCII only, bounded: GHL's codes and our states are short tokens; anything else is refused with a 400.
const token = (maxLength: number) => ({ type: 'string', maxLength, pattern: '^[\\x21-\\x7e]*$' }) as const;
const callbackQuery = {
  type: 'object',
  properties: { code: token(4096), state: token(256), error: { type: 'string', maxLength: 500 } },
} as const;

export function registerInstallRoutes(app: FastifyInstance, svc: () => InstallationsService | undefined): void {
  app.get(INSTALL_PATH, async (_req, reply) => {
    const s = svc();
    if (!s)
      return reply
        .code(503)
        .type('text/html')
        .send(page('Not configured', 'Set GHL_CLIENT_ID and GHL_CLIENT_SECRET to install the app.'));
    return reply.redirect(await s.authorizeUrl(), 302);
  });

  app.get(CALLBACK_PATH, { schema: { querystring: callbackQuery } }, async (req, reply) => {
    const s = svc();
    if (!s)
      return reply
        .code(503)
        .type('text/html')
        .send(page('Not configured', 'Set GHL_CLIENT_ID and GHL_CLIENT_SECRET to install the app.'));
    const q = req.query as { code?: string; state?: string; error?: string };
    if (q.error)
      return reply
        .code(400)
        .type('text/html')
        .send(page('Install cancelled', esc(q.error)));
    if (!q.code)
      return reply.code(400).type('text/html').send(page('Install failed', 'The callback has no authorization code.'));
    try {
      const inst = await s.completeInstall(q.code, q.state);
      const what =
        inst.kind === 'company'
          ? `agency ${inst.companyId}${inst.isBulk ? ' (bulk install: location tokens are being prepared)' : ''}`
          : `location ${inst.locationId}`;
      return reply
        .type('text/html')
        .send(page('Installed', `ghl-bridge is connected to ${esc(what)}. You can close this window.`));
    } catch (e) {
      if (e instanceof OAuthStateError) {
        req.log.warn({ reason: e.message }, 'OAuth callback with a bad state');
        return reply
          .code(400)
          .type('text/html')
          .send(
            page(
              'Install failed',
              'This install link is invalid, expired or was already used. Start the install again.',
            ),
          );
      }
      if (e instanceof GhlApiError) {
        req.log.warn({ status: e.status, message: e.message, traceId: e.traceId }, 'OAuth code exchange failed');
        return reply
          .code(400)
          .type('text/html')
          .send(
            page('Install failed', `GHL refused the authorization code (${esc(e.message)}). Start the install again.`),
          );
      }
      throw e;
    }
  });
}
