#!/usr/bin/env node
import { Command } from 'commander';
import { registerChannelsCommand } from './commands/channels.js';
import { registerConfigCommand } from './commands/config.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerEmulatorCommand } from './commands/emulator.js';
import { registerInstallationsCommand } from './commands/installations.js';
import { registerJobsCommand } from './commands/jobs.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerProviderCommand } from './commands/provider.js';
import { registerStartCommand } from './commands/start.js';
import { registerWebhooksCommand } from './commands/webhooks.js';

const program = new Command();
program
  .name('ghl-bridge')
  .description('GoHighLevel conversation-provider and sync bridge')
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) });

registerStartCommand(program);
registerMigrateCommand(program);
registerDoctorCommand(program);
registerJobsCommand(program);
registerKeysCommand(program);
registerInstallationsCommand(program);
registerWebhooksCommand(program);
registerConfigCommand(program);
registerEmulatorCommand(program);
registerChannelsCommand(program);
registerProviderCommand(program);

await program.parseAsync(process.argv);
