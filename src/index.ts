/**
 * Library entry point (`import { createBridge } from 'ghl-bridge'`): build a bridge from a
 * configuration and a module list, the way `ghl-bridge start` does.
 *
 *   const config = loadConfig(process.env);
 *   const bridge = await createBridge(config, { modules: await bridgeModules(config) });
 *   await bridge.listen();
 */
export {
  bridgeMigrations,
  createBridge,
  CORE_MIGRATIONS,
  type AppContext,
  type Bridge,
  type BridgeModule,
  type CreateBridgeOptions,
} from './app.js';
export { ConfigError, loadConfig, type Config } from './infra/config/index.js';
export type { Migrations } from './infra/db/migrations/index.js';
export { createLogger, type Logger, type LoggerOptions } from './infra/log/logger.js';
export { allMigrations, bridgeModules, type ModuleOptions } from './modules.js';
export { dashboardModule } from './console/index.js';
export { installationsModule } from './platform/installations/index.js';
export { providerModule } from './capabilities/provider/index.js';
export { webhooksModule } from './platform/webhooks/index.js';
