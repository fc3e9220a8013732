import { bridgeMigrations, type BridgeModule } from './app.js';
import type { Config } from './infra/config/index.js';
import type { Migrations } from './infra/db/migrations/index.js';
import { dashboardModule } from './console/index.js';
import { apiKeysModule } from './platform/apikeys/index.js';
import { callsModule } from './capabilities/calls/index.js';
import { installationsModule } from './platform/installations/index.js';
import { eventsModule } from './capabilities/events/index.js';
import { pipelinesModule } from './capabilities/pipelines/index.js';
import { providerModule } from './capabilities/provider/index.js';
import { chatModule } from './capabilities/chat/index.js';
import { contactsModule } from './capabilities/contacts/index.js';
import { importsModule } from './capabilities/imports/index.js';
import { webhooksModule } from './platform/webhooks/index.js';

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
    webhooksModule(
      opts.webhookKeys ? { extraEd25519Keys: opts.webhookKeys.ed25519, extraRsaKeys: opts.webhookKeys.rsa } : {},
    ),
    installationsModule(),
    apiKeysModule(),
    providerModule(),
    eventsModule(),
    chatModule(),
    contactsModule(),
    importsModule(),
    callsModule(),
    pipelinesModule(),
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
