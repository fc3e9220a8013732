#!/usr/bin/env node
import { Command } from 'commander';

/**
 * Each command's module is loaded only when that command runs: a command pulls in its own dependencies (the bridge,
 * the emulator, the store), and loading all of them up front cost every start, and every `--help`, about half a
 * second (README, "Start time"). Help and unknown commands load them all, so the help text stays complete.
 */
type Register = (program: Command) => void;
const COMMANDS: Record<string, () => Promise<Register>> = {
  start: async () => (await import('./commands/start.js')).registerStartCommand,
  migrate: async () => (await import('./commands/migrate.js')).registerMigrateCommand,
  doctor: async () => (await import('./commands/doctor.js')).registerDoctorCommand,
  jobs: async () => (await import('./commands/jobs.js')).registerJobsCommand,
  keys: async () => (await import('./commands/keys.js')).registerKeysCommand,
  installations: async () => (await import('./commands/installations.js')).registerInstallationsCommand,
  webhooks: async () => (await import('./commands/webhooks.js')).registerWebhooksCommand,
  config: async () => (await import('./commands/config.js')).registerConfigCommand,
  emulator: async () => (await import('./commands/emulator.js')).registerEmulatorCommand,
  channels: async () => (await import('./commands/channels.js')).registerChannelsCommand,
  provider: async () => (await import('./commands/provider.js')).registerProviderCommand,
  triggers: async () => (await import('./commands/triggers.js')).registerTriggersCommand,
  'api-keys': async () => (await import('./commands/api-keys.js')).registerApiKeysCommand,
  calls: async () => (await import('./commands/calls.js')).registerCallsCommand,
  subscriptions: async () => (await import('./commands/subscriptions.js')).registerSubscriptionsCommand,
  contacts: async () => (await import('./commands/contacts.js')).registerContactsCommand,
  import: async () => (await import('./commands/import.js')).registerImportCommand,
};

const program = new Command();
program
  .name('ghl-bridge')
  .description('GoHighLevel conversation-provider and sync bridge')
  .showHelpAfterError()
  .configureOutput({ outputError: (s, write) => write(s) });

// The command named on the command line; none means `start` (the default command), options alone too.
const args = process.argv.slice(2);
const first = args.find((a) => !a.startsWith('-'));
const wantsHelp = args.includes('--help') || args.includes('-h') || first === 'help';
const name = first ?? (args.length === 0 ? 'start' : undefined);
const only = !wantsHelp && name !== undefined && name in COMMANDS ? [name] : Object.keys(COMMANDS);
// Registered in this fixed order, so `start` stays the default and the help lists commands as before.
for (const register of await Promise.all(only.map((n) => COMMANDS[n]!()))) register(program);

await program.parseAsync(process.argv);
