import type { Command } from 'commander';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { allMigrations } from '../../modules.js';
import { configOrExit, fail, openStore } from '../common.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations and exit (start also does this)')
    .action(async () => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        const applied = await migrateToLatest(store.db, store.schema, await allMigrations(config));
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } catch (e) {
        fail(e);
      } finally {
        await store.close();
      }
    });
}
