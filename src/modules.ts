import type { BridgeModule } from './app.js';
import type { Config } from './config/index.js';
import { installationsModule } from './installations/index.js';
import { webhooksModule } from './webhooks/index.js';

/**
 * The feature modules of a running bridge, in dependency order (a module's `init` may use the
 * services published by the modules before it).
 */
export async function bridgeModules(_config: Config): Promise<BridgeModule[]> {
  return [webhooksModule(), installationsModule()];
}
