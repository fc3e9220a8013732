import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ChannelConfig, ChannelConfigInput } from '../channels/index.js';
import { requireAdminKey } from '../../infra/http/admin-auth.js';
import { locationIdParams } from '../../infra/http/ids.js';
import { ChannelValidationError, type ChannelOptions, type ChannelView } from './channels.js';

/** The part of the provider service (index.ts) these routes use; declared here so admin.ts does not import index.ts. */
export interface ChannelAdminService {
  configureChannel(locationId: string, config: ChannelConfigInput | ChannelConfig, opts?: ChannelOptions): Promise<ChannelView>;
  getChannel(locationId: string): Promise<ChannelView | undefined>;
  listChannels(): Promise<ChannelView[]>;
  deleteChannel(locationId: string): Promise<boolean>;
  inboundUrl(locationId: string): string;
}

const putBody = z.object({
  config: z.record(z.string(), z.unknown()),
  defaultRegion: z.string().length(2).optional(),
  conversationProviderId: z.string().min(1).max(200).nullable().optional(),
  emailInboundType: z.enum(['Email', 'Custom']).optional(),
  enabled: z.boolean().optional(),
});

/**
 * Operator API for per-location channels, `Authorization: Bearer <ADMIN_API_KEY>`:
 * PUT /admin/channels/:locationId (validated, secrets encrypted), GET /admin/channels[/:locationId] (masked), DELETE.
 */
export async function registerChannelAdminRoutes(app: FastifyInstance, o: { service: ChannelAdminService; apiKey: string }): Promise<void> {
  const s = o.service;
  app.addHook('onRequest', requireAdminKey(o.apiKey));
  const withUrl = <T extends { locationId: string }>(v: T) => ({ ...v, inboundUrl: s.inboundUrl(v.locationId) });

  app.get('/admin/channels', async () => ({ channels: (await s.listChannels()).map(withUrl) }));
  app.get<{ Params: { locationId: string } }>('/admin/channels/:locationId', { schema: { params: locationIdParams } }, async (req, reply) => {
    const v = await s.getChannel(req.params.locationId);
    if (!v) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no channel configured for location ${req.params.locationId}` });
    return withUrl(v);
  });
  app.put<{ Params: { locationId: string } }>('/admin/channels/:locationId', { schema: { params: locationIdParams } }, async (req, reply) => {
    const b = putBody.safeParse(req.body);
    if (!b.success) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: z.prettifyError(b.error) });
    try {
      const { config, ...opts } = b.data;
      return withUrl(await s.configureChannel(req.params.locationId, config as never, opts));
    } catch (e) {
      if (e instanceof ChannelValidationError) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: e.message });
      throw e;
    }
  });
  app.delete<{ Params: { locationId: string } }>('/admin/channels/:locationId', { schema: { params: locationIdParams } }, async (req, reply) => {
    const ok = await s.deleteChannel(req.params.locationId);
    if (!ok) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no channel configured for location ${req.params.locationId}` });
    return { ok: true };
  });
}
