import type { Command } from 'commander';
import { createBridge } from '../../app.js';
import { createLogger } from '../../infra/log/logger.js';
import { bridgeModules } from '../../modules.js';
import type { Sandbox } from '../../sandbox/index.js';
import { configOrExit, fail } from '../common.js';

export function registerStartCommand(program: Command): void {
  program
    .command('start', { isDefault: true })
    .description('run the bridge (HTTP server + workers); sandbox mode when no GHL credentials are set')
    .action(async () => {
      let config = configOrExit();
      let log = createLogger({ level: config.LOG_LEVEL, secrets: config.secretValues });
      let bridge;
      let sandbox: Sandbox | undefined;
      try {
        // The sandbox (and the emulator it runs) is loaded only in sandbox mode.
        const sb = config.sandbox ? await import('../../sandbox/index.js') : undefined;
        if (sb) {
          sandbox = await sb.startSandbox(config, log);
          config = sandbox.config;
          log = createLogger({ level: config.LOG_LEVEL, secrets: config.secretValues });
        }
        const modules = await bridgeModules(config, sandbox ? { webhookKeys: sandbox.webhookKeys } : {});
        if (sb && sandbox) modules.push(sb.sandboxModule(sandbox));
        bridge = await createBridge(config, { log, modules });
      } catch (e) {
        await sandbox?.close();
        fail(e);
      }
      const url = await bridge.listen();
      let startupNotes: string[] = [];
      if (sandbox) {
        try {
          startupNotes = await sandbox.afterListen(url, bridge.ctx.services);
        } catch (e) {
          log.error({ err: e }, 'sandbox setup failed');
        }
      }
      log.info({ url, store: bridge.ctx.store.kind, sandbox: config.sandbox }, 'ghl-bridge started');
      console.log(
        [
          '',
          `  ghl-bridge is running at ${url}`,
          `  store:   ${bridge.ctx.store.kind === 'postgres' ? `PostgreSQL (schema ${config.DATABASE_SCHEMA})` : `embedded PGlite in ${config.DATA_DIR}`}`,
          `  health:  ${url}/readyz    metrics: ${url}/metrics`,
          ...startupNotes,
          '  Stop with Ctrl-C.',
          '',
        ].join('\n'),
      );
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) {
          log.warn('second signal: exiting now');
          process.exit(1);
        }
        stopping = true;
        log.info({ signal }, 'shutting down');
        bridge
          .close()
          .then(() => sandbox?.close())
          .then(() => {
            log.info('stopped cleanly');
            process.exit(0);
          })
          .catch((e: unknown) => {
            log.error({ err: e }, 'shutdown failed');
            process.exit(1);
          });
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    });
}
