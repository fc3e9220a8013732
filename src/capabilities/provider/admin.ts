import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ChannelConfig, ChannelConfigInput } from '../channels/index.js';
import { channelConfigSchema } from '../channels/config.js';
import { httpError } from '../../infra/http/errors.js';
import { errorResponses, locationIdParams, timestamp } from '../../infra/http/schemas.js';
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
  // The channel config typed by its own schema (no cast); failures name each field under body.config.
  config: channelConfigSchema,
  defaultRegion: z.string().length(2).optional(),
  conversationProviderId: z.string().min(1).max(200).nullable().optional(),
  emailInboundType: z.enum(['Email', 'Custom']).optional(),
  enabled: z.boolean().optional(),
});

const channelView = z.object({
  locationId: z.string(),
  kind: z.enum(['http', 'cast', 'loopback']),
  config: z.record(z.string(), z.unknown()).describe('the channel config with secret fields masked'),
  defaultRegion: z.string(),
  conversationProviderId: z.string().nullable(),
  emailInboundType: z.enum(['Email', 'Custom']),
  enabled: z.boolean(),
  keyId: z.string().nullable(),
  updatedAt: timestamp,
  inboundUrl: z.string().describe('where the channel POSTs inbound messages for this location'),
});

const tags = ['admin: channels'];

/**
 * Operator API for per-location channels (registered in the kernel's guarded admin scope, app.ts adminRoutes):
 * PUT /admin/channels/:locationId (validated, secrets encrypted), GET /admin/channels[/:locationId] (masked), DELETE.
 */
export async function registerChannelAdminRoutes(
  app: FastifyInstance,
  o: { service: ChannelAdminService },
): Promise<void> {
  const s = o.service;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const missing = (locationId: string) => httpError(404, `no channel configured for location ${locationId}`);
  const withUrl = <T extends { locationId: string }>(v: T) => ({ ...v, inboundUrl: s.inboundUrl(v.locationId) });

  r.get(
    '/admin/channels',
    {
      schema: {
        tags,
        summary: 'Every configured channel (secrets masked)',
        response: { 200: z.object({ channels: z.array(channelView) }), ...errorResponses(401) },
      },
    },
    async () => ({ channels: (await s.listChannels()).map(withUrl) }),
  );
  r.get(
    '/admin/channels/:locationId',
    {
      schema: {
        tags,
        summary: 'The channel of a location (secrets masked)',
        params: locationIdParams,
        response: { 200: channelView, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const v = await s.getChannel(req.params.locationId);
      if (!v) throw missing(req.params.locationId);
      return withUrl(v);
    },
  );
  r.put(
    '/admin/channels/:locationId',
    {
      schema: {
        tags,
        summary: 'Configure (insert or replace) the channel of a location; secrets are encrypted at rest',
        params: locationIdParams,
        body: putBody,
        response: { 200: channelView, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const { config, ...opts } = req.body;
      try {
        return withUrl(await s.configureChannel(req.params.locationId, config, opts));
      } catch (e) {
        if (e instanceof ChannelValidationError) throw httpError(400, e.message);
        throw e;
      }
    },
  );
  r.delete(
    '/admin/channels/:locationId',
    {
      schema: {
        tags,
        summary: 'Remove the channel of a location',
        params: locationIdParams,
        response: { 200: z.object({ ok: z.literal(true) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const ok = await s.deleteChannel(req.params.locationId);
      if (!ok) throw missing(req.params.locationId);
      return { ok: true as const };
    },
  );
}
