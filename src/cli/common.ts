import { ConfigError, loadConfig, loadDotEnv, type Config } from '../infra/config/index.js';
import { openDatabase, type DatabaseHandle } from '../infra/db/index.js';
import { DataDirLockedError } from '../infra/db/lockfile.js';

/** Loads .env + environment; on a bad configuration prints every problem and exits 2. */
export function configOrExit(): Config {
  try {
    loadDotEnv();
    return loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
}

export async function openStore(config: Config): Promise<DatabaseHandle> {
  try {
    return await openDatabase({
      url: config.DATABASE_URL,
      schema: config.DATABASE_SCHEMA,
      dataDir: config.DATA_DIR,
      embeddedThread: config.EMBEDDED_STORE_THREAD,
      poolMax: 2,
    });
  } catch (e) {
    fail(e);
  }
}

/** Prints a known error without a stack trace and exits 1. */
export function fail(e: unknown): never {
  if (e instanceof DataDirLockedError || e instanceof ConfigError) console.error(e.message);
  else console.error(e instanceof Error ? `error: ${e.message}` : e);
  process.exit(1);
}
