/**
 * API keys of the bridge's public /v1 API: created by the CLI or the admin API, scoped to locations, stored hashed,
 * shown once, revocable. Capability modules guard their /v1 routes with `ctx.services.get('apiKeys').requireLocation(…)`.
 */
import type { BridgeModule } from '../../app.js';
import { registerApiKeyAdminRoutes } from './admin.js';
import { apiKeysMigration } from './migration.js';
import { ApiKeyService } from './service.js';

export { ApiKeyService, ApiKeyInputError, KEY_PREFIX } from './service.js';
export type { ApiKeyInfo, ApiPrincipal, ApiKeyPreHandler } from './service.js';
export { apiKeysMigration } from './migration.js';

declare module '../../app.js' {
  interface Services {
    apiKeys: ApiKeyService;
  }
}

export function apiKeysModule(): BridgeModule {
  return {
    name: 'apikeys',
    migrations: { '0007_apikeys': apiKeysMigration },
    init(ctx) {
      ctx.services.provide('apiKeys', new ApiKeyService(ctx.db, ctx.config.ADMIN_API_KEY));
    },
    async adminRoutes(admin, ctx) {
      await registerApiKeyAdminRoutes(admin, ctx.services.get('apiKeys'));
    },
  };
}
