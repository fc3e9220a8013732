import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody } from '../../infra/http/errors.js';
import { apiErrorSchema } from '../../infra/http/schemas.js';
import { GhlApiError } from '../ghl/errors.js';
import { OAuthStateError, type InstallationsService } from './service.js';

export const INSTALL_PATH = '/oauth/install';
export const CALLBACK_PATH = '/oauth/callback';

const page = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:sans-serif;max-width:40em;margin:4em auto"><h1>${title}</h1><p>${text}</p></body>`;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Printable ASCII only, bounded: GHL's codes and our states are short tokens; anything else is refused with a 400.
const token = (maxLength: number) =>
  z
    .string()
    .max(maxLength)
    .regex(/^[\x21-\x7e]*$/, 'expected printable ASCII');
const callbackQuery = z.object({
  code: token(4096).optional().describe('the authorization code GHL appends'),
  state: token(256).optional().describe('the state the install link carried (single use, 10 min)'),
  error: z.string().max(500).optional().describe('set by GHL when the user cancelled'),
});

const installed = z.object({
  installed: z.literal(true),
  installation: z.object({
    id: z.string(),
    kind: z.enum(['location', 'company']),
    companyId: z.string(),
    locationId: z.string().nullable(),
    isBulk: z.boolean(),
  }),
});

/**
 * The callback is where a browser lands after GHL's consent screen: it answers HTML pages, or the one JSON error shape
 * (and a JSON success) when the client asks for JSON (`Accept: application/json` without text/html).
 */
const wantsJson = (req: FastifyRequest) => {
  const accept = String(req.headers.accept ?? '').toLowerCase();
  return accept.includes('application/json') && !accept.includes('text/html');
};

export function registerInstallRoutes(app: FastifyInstance, svc: () => InstallationsService | undefined): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['installation'];
  const notConfigured = 'Set GHL_CLIENT_ID and GHL_CLIENT_SECRET to install the app.';

  r.get(
    INSTALL_PATH,
    {
      schema: {
        tags,
        summary: 'Start the install: redirects (302) to GHL’s consent screen with a fresh state',
        response: {
          302: z.null().describe('redirect to GHL'),
          503: { description: 'not configured', content: { 'text/html': { schema: z.string() } } },
        },
      },
    },
    async (_req, reply) => {
      const s = svc();
      if (!s) return reply.code(503).type('text/html').send(page('Not configured', notConfigured));
      return reply.redirect(await s.authorizeUrl(), 302);
    },
  );

  /** An error page for a browser, the one JSON shape for a JSON client. */
  const fail = (
    req: FastifyRequest,
    reply: FastifyReply,
    status: 400 | 503,
    title: string,
    html: string,
    message: string,
    errorCode?: string,
    details?: Array<{ path: string; message: string }>,
  ) =>
    wantsJson(req)
      ? reply.code(status).send(
          errorBody(req.id, status, message, {
            ...(errorCode ? { errorCode } : {}),
            ...(details ? { details } : {}),
          }),
        )
      : reply.code(status).type('text/html').send(page(title, html));

  r.get(
    CALLBACK_PATH,
    {
      attachValidation: true,
      schema: {
        tags,
        summary: 'OAuth redirect target: exchanges the code and stores the installation',
        description:
          'Answers HTML for a browser; with Accept: application/json, JSON (the one error shape on failure).',
        querystring: callbackQuery,
        response: {
          200: {
            description: 'installed',
            content: { 'application/json': { schema: installed }, 'text/html': { schema: z.string() } },
          },
          400: {
            description: 'install cancelled or failed (bad state, missing code, code refused)',
            content: { 'application/json': { schema: apiErrorSchema }, 'text/html': { schema: z.string() } },
          },
          503: {
            description: 'GHL_CLIENT_ID / GHL_CLIENT_SECRET not set',
            content: { 'application/json': { schema: apiErrorSchema }, 'text/html': { schema: z.string() } },
          },
        },
      },
    },
    async (req, reply) => {
      if (req.validationError) {
        const details = (req.validationError.validation ?? []).map(
          (v: { instancePath?: string; message?: string }) => ({
            path: ['query', ...(v.instancePath ?? '').split('/').filter(Boolean)].join('.'),
            message: v.message ?? 'invalid',
          }),
        );
        return fail(
          req,
          reply,
          400,
          'Install failed',
          'The callback address is malformed. Start the install again.',
          details.map((d: { path: string; message: string }) => `${d.path}: ${d.message}`).join('; '),
          undefined,
          details,
        );
      }
      const s = svc();
      if (!s) return fail(req, reply, 503, 'Not configured', notConfigured, notConfigured, 'not_configured');
      const q = req.query;
      if (q.error)
        return fail(
          req,
          reply,
          400,
          'Install cancelled',
          esc(q.error),
          `install cancelled: ${q.error}`,
          'install_cancelled',
        );
      if (!q.code) {
        const m = 'The callback has no authorization code.';
        return fail(req, reply, 400, 'Install failed', m, m, 'missing_code', [
          { path: 'query.code', message: 'required' },
        ]);
      }
      try {
        const inst = await s.completeInstall(q.code, q.state);
        if (wantsJson(req))
          return reply.send({
            installed: true as const,
            installation: {
              id: inst.id,
              kind: inst.kind,
              companyId: inst.companyId,
              locationId: inst.locationId,
              isBulk: inst.isBulk,
            },
          });
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
          const m = 'This install link is invalid, expired or was already used. Start the install again.';
          return fail(req, reply, 400, 'Install failed', m, m, 'invalid_state');
        }
        if (e instanceof GhlApiError) {
          req.log.warn({ status: e.status, message: e.message, traceId: e.traceId }, 'OAuth code exchange failed');
          return fail(
            req,
            reply,
            400,
            'Install failed',
            `GHL refused the authorization code (${esc(e.message)}). Start the install again.`,
            `GHL refused the authorization code (${e.message}); start the install again`,
            'code_rejected',
          );
        }
        throw e;
      }
    },
  );
}
