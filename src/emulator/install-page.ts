import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from './context.js';
import { authorize, OAuthError } from './oauth-service.js';
import { query } from './routes/util.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The marketplace "choose location" page. A person picks a sub-account or agency and submits; a test can skip
 * the HTML by adding `locationId=` or `companyId=` (emulator extension) and follow the 302 to redirect_uri?code=&state=.
 */
export function registerInstallPage(app: FastifyInstance, ctx: Ctx): void {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = query(req);
    const clientId = q.client_id ?? '';
    const target = ctx.state.appByClientId(clientId);
    if (!target) return reply.code(400).type('text/html').send('<h1>Invalid client_id</h1>');
    if (q.response_type !== undefined && q.response_type !== 'code')
      return reply.code(400).type('text/html').send('<h1>Unsupported response_type</h1>');
    const redirectUri = q.redirect_uri ?? target.redirectUris[0] ?? '';
    if (!target.redirectUris.includes(redirectUri))
      return reply.code(400).type('text/html').send('<h1>Invalid redirect_uri</h1>');
    const pick = q.locationId ?? q.companyId;
    if (pick) {
      try {
        const r = authorize(ctx, {
          clientId,
          redirectUri,
          ...(q.locationId ? { locationId: q.locationId } : { companyId: String(q.companyId) }),
          ...(q.state !== undefined ? { state: q.state } : {}),
          ...(q.locationIds ? { locationIds: q.locationIds.split(',').filter(Boolean) } : {}),
          ...(q.bulk === 'true' ? { bulk: true } : {}),
        });
        return reply.redirect(r.redirectUrl, 302);
      } catch (e) {
        if (e instanceof OAuthError)
          return reply
            .code(e.status)
            .type('text/html')
            .send(`<h1>${esc(e.message)}</h1>`);
        throw e;
      }
    }
    const hidden = ['client_id', 'redirect_uri', 'response_type', 'scope', 'state']
      .filter((k) => q[k] !== undefined)
      .map((k) => `<input type="hidden" name="${k}" value="${esc(String(q[k]))}">`)
      .join('');
    const locs = target.distribution === 'agency' ? [] : [...ctx.state.locations.values()];
    const ags = [...ctx.state.agencies.values()];
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>Choose location · ${esc(target.name)}</title></head>
<body style="font-family:sans-serif;max-width:40rem;margin:2rem auto">
<h1>Install ${esc(target.name)}</h1><p>Scopes: ${esc(target.scopes.join(' '))}</p>
${locs.length ? `<h2>Sub-accounts</h2>${locs.map((l) => `<form method="get">${hidden}<input type="hidden" name="locationId" value="${esc(l.id)}"><button>${esc(l.name)} (${esc(l.id)})</button></form>`).join('')}` : ''}
<h2>Agencies</h2>${ags.map((a) => `<form method="get">${hidden}<input type="hidden" name="companyId" value="${esc(a.id)}"><button>${esc(a.name)} (${esc(a.id)})${target.distribution === 'agency' ? '' : ' — bulk install on all sub-accounts'}</button></form>`).join('')}
</body></html>`;
    return reply.type('text/html').send(html);
  };
  app.get('/v2/oauth/chooselocation', handler);
  app.get('/oauth/chooselocation', handler);
}
