import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ChannelConfig, ChannelConfigInput } from '../channels/index.js';
import { channelConfigSchema } from '../channels/config.js';
import { httpError, parseOr400, zodDetails } from '../../infra/http/errors.js';
import { locationIdParams } from '../../infra/http/ids.js';
import { ChannelValidationError, type ChannelOptions, type ChannelView } from './channels.js';

/** The part of the provider service (index.ts) these routes use; declared here so admin.ts does not import index.ts. */
export interface ChannelAdminService {
  configureChannel(
    locationId: string,
    config: ChannelConfigInput | ChannelConfig,
    opts?: ChannelOptions,
  ): Promise<ChannelView>;
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
 * Operator API for per-location channels (registered in the kernel's guarded admin scope, app.ts adminRoutes):
 * PUT /admin/channels/:locationId (validated, secrets encrypted), GET /admin/channels[/:locationId] (masked), DELETE.
 */
export async function registerChannelAdminRoutes(
  app: FastifyInstance,
  o: { service: ChannelAdminService },
): Promise<void> {
  const s = o.service;
  const missing = (locationId: string) => httpError(404, `no channel configured for location ${locationId}`);
  const withUrl = <T extends { locationId: string }>(v: T) => ({ ...v, inboundUrl: s.inboundUrl(v.locationId) });

  app.get('/admin/channels', async () => ({ channels: (await s.listChannels()).map(withUrl) }));
  app.get<{ Params: { locationId: string } }>(
    '/admin/channels/:locationId',
    { schema: { params: locationIdParams } },
    async (req) => {
      const v = await s.getChannel(req.params.locationId);
      if (!v) throw missing(req.params.locationId);
      return withUrl(v);
    },
  );
  app.put<{ Params: { locationId: string } }>(
    '/admin/channels/:locationId',
    { schema: { params: locationIdParams } },
    async (req) => {
      const { config: raw, ...opts } = parseOr400(putBody, req.body, 'body');
      // The channel config typed by its own schema (no cast); failures name each field under body.config.
      const c = channelConfigSchema.safeParse(raw);
      if (!c.success) {
        const details = zodDetails('body.config', c.error);
        throw httpError(
          400,
          `invalid channel config: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`,
          details,
        );
      }
      try {
        return withUrl(await s.configureChannel(req.params.locationId, c.data, opts));
      } catch (e) {
        if (e instanceof ChannelValidationError) throw httpError(400, e.message);
        throw e;
      }
    },
  );
  app.delete<{ Params: { locationId: string } }>(
    '/admin/channels/:locationId',
    { schema: { params: locationIdParams } },
    async (req) => {
      const ok = await s.deleteChannel(req.params.locationId);
      if (!ok) throw missing(req.params.locationId);
      return { ok: true };
    },
  );
}
