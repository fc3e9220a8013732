import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppContext, BridgeModule } from '../app.js';
import type { InstallationsService } from '../platform/installations/index.js';
import type { ProviderService } from '../capabilities/provider/index.js';
import { countByState, listJobs, retryJobs } from '../infra/queue/index.js';
import { errorResponses } from '../infra/http/schemas.js';
import { listEvents } from '../platform/webhooks/index.js';
import { DASHBOARD_HTML } from './page.js';

const retryBody = z
  .object({
    ids: z.array(z.number().int().positive('expected positive whole numbers')).max(10_000).optional(),
    allDead: z.literal(true).optional(),
  })
  .refine((b) => b.ids !== undefined || b.allDead, { message: 'send {"ids":[…]} or {"allDead":true}' });

/**
 * Ops dashboard: GET /admin serves a static page to anyone (a login form holding no data: a browser navigation
 * cannot send a bearer key); the page asks for the admin key and reads /admin/api/overview with it. The data calls
 * are in the kernel's guarded admin scope (adminRoutes). Everything is read through the owning modules' functions.
 * Disabled when ADMIN_API_KEY is unset.
 */
export function dashboardModule(): BridgeModule {
  return {
    name: 'dashboard',
    routes(app, ctx) {
      if (!ctx.config.ADMIN_API_KEY) return;
      app.get(
        '/admin',
        {
          schema: {
            tags: ['console'],
            summary: 'The operator console page (HTML; asks for the admin key, holds no data)',
            response: { 200: { description: 'HTML page', content: { 'text/html': { schema: z.string() } } } },
          },
        },
        async (_req, reply) =>
          reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(DASHBOARD_HTML),
      );
    },
    adminRoutes(app, ctx) {
      const r = app.withTypeProvider<ZodTypeProvider>();
      const tags = ['admin: console'];
      r.get(
        '/admin/api/overview',
        {
          schema: {
            tags,
            summary: 'What the console shows: jobs, installations, webhooks, channels, provider',
            response: {
              200: z
                .record(z.string(), z.unknown())
                .describe('generatedAt, mode, store, jobs, installations, webhooks, channels, provider'),
              ...errorResponses(401),
            },
          },
        },
        async () => overview(ctx),
      );
      r.post(
        '/admin/api/jobs/retry',
        {
          schema: {
            tags,
            summary: 'Retry dead jobs: the ones named, or every dead job',
            body: retryBody,
            response: { 200: z.object({ retried: z.number().int() }), ...errorResponses(400, 401) },
          },
        },
        async (req) => {
          const b = req.body;
          const retried = await retryJobs(ctx.db, b.ids ? { ids: b.ids } : { allDead: true });
          ctx.queue.notify();
          return { retried };
        },
      );
    },
  };
}

export async function overview(ctx: AppContext) {
  // Both optional: the console shows what the loaded modules provide.
  const installations: InstallationsService | undefined = ctx.services.find('installations');
  const provider: ProviderService | undefined = ctx.services.find('provider');
  const inst = installations ? await installations.list() : [];
  const byStatus: Record<string, number> = {};
  for (const i of inst) byStatus[i.status] = (byStatus[i.status] ?? 0) + 1;
  const channels = provider ? await provider.listChannels() : [];
  // Last catch-up per location (both streams: the older run and checkpoint, the sums of the last runs).
  const catchup = new Map<
    string,
    { lastRunAt: Date | null; checkpointAt: Date; caughtUp: number; expired: number; error: string | null }
  >();
  for (const r of provider ? await provider.catchupOverview() : []) {
    const c = catchup.get(r.locationId);
    if (!c)
      catchup.set(r.locationId, {
        lastRunAt: r.lastRunAt,
        checkpointAt: r.checkpointAt,
        caughtUp: r.lastCaughtUp,
        expired: r.lastExpired,
        error: r.lastError,
      });
    else {
      if (r.lastRunAt && (!c.lastRunAt || r.lastRunAt < c.lastRunAt)) c.lastRunAt = r.lastRunAt;
      if (r.checkpointAt < c.checkpointAt) c.checkpointAt = r.checkpointAt;
      c.caughtUp += r.lastCaughtUp;
      c.expired += r.lastExpired;
      c.error ??= r.lastError;
    }
  }
  return {
    generatedAt: new Date().toISOString(),
    mode: ctx.config.sandbox ? 'sandbox' : 'live',
    store: ctx.store.kind,
    jobs: {
      byState: await countByState(ctx.db),
      dead: (await listJobs(ctx.db, { state: 'dead', limit: 25 })).map(jobView),
    },
    installations: {
      byStatus,
      // Only what an operator needs; tokens never leave the vault.
      needingAttention: inst
        .filter((i) => i.status !== 'active')
        .slice(0, 50)
        .map((i) => ({
          id: i.id,
          companyId: i.companyId,
          locationId: i.locationId,
          status: i.status,
          reason: i.statusReason,
        })),
      total: inst.length,
    },
    webhooks: { recent: await listEvents(ctx.db, { limit: 25 }) },
    channels: channels.map((c) => ({
      locationId: c.locationId,
      kind: c.kind,
      enabled: c.enabled,
      config: c.config,
      catchup: catchup.get(c.locationId) ?? null,
    })),
    // The Delivery URL only masked: its token is a secret.
    provider: provider
      ? { deliveryUrl: await provider.maskedDeliveryUrl(), ...(await provider.confirmationOverview()) }
      : null,
  };
}

function jobView(j: Awaited<ReturnType<typeof listJobs>>[number]) {
  return {
    id: j.id,
    kind: j.kind,
    attempts: j.attempts,
    maxAttempts: j.max_attempts,
    lastError: j.last_error,
    scope: j.scope,
    updatedAt: j.updated_at,
  };
}
