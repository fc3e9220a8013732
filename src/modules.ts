import { bridgeMigrations, type BridgeModule } from './app.js';
import type { Config } from './config/index.js';
import type { Migrations } from './db/migrations/index.js';
import { dashboardModule } from './dashboard/index.js';
import { installationsModule } from './installations/index.js';
import { providerModule } from './provider/index.js';
import { webhooksModule } from './webhooks/index.js';

/**
 * The feature modules of a running bridge, in dependency order (a module's `init` may use the
 * services published by the modules before it).
 */
export interface ModuleOptions {
  /** Extra webhook verification keys (sandbox: the emulator's). */
  webhookKeys?: { ed25519: string[]; rsa: string[] };
}

export async function bridgeModules(_config?: Config, opts: ModuleOptions = {}): Promise<BridgeModule[]> {
  return [
    webhooksModule(opts.webhookKeys ? { extraEd25519Keys: opts.webhookKeys.ed25519, extraRsaKeys: opts.webhookKeys.rsa } : {}),
    installationsModule(),
    providerModule(),
    dashboardModule(),
  ];
}

/**
 * Every migration of a full bridge (the kernel's and each module's), for `ghl-bridge migrate`,
 * `doctor` and the CLI commands that open the store without starting a bridge.
 */
export async function allMigrations(config?: Config): Promise<Migrations> {
  return bridgeMigrations(await bridgeModules(config));
}
