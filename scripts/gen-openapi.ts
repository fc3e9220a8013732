/**
 * `npm run gen:openapi`: writes docs/openapi.json, the OpenAPI 3.1 document of a full bridge (every module, admin API
 * on), generated from the route schemas. test/foundation/openapi.test.ts fails when the checked-in copy is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createBridge, type Bridge } from '../src/app.js';
import { loadConfig } from '../src/infra/config/index.js';
import { createLogger } from '../src/infra/log/logger.js';
import { bridgeModules } from '../src/modules.js';

export const OPENAPI_FILE = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

/** A full bridge on an in-memory store, not listening, with the admin API on (a fixed placeholder key). */
export async function documentedBridge(): Promise<Bridge> {
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    ADMIN_API_KEY: 'openapi-generator-placeholder-key-0000',
    DATABASE_SCHEMA: 'openapi',
    WORKER_CONCURRENCY: '0',
  });
  const bridge = await createBridge(config, {
    log: createLogger({ level: 'silent' }),
    modules: await bridgeModules(config),
    dataDir: 'memory://',
  });
  await bridge.app.ready();
  return bridge;
}

/** The document as checked in: 2-space JSON and a final newline. */
export function renderOpenApi(bridge: Bridge): string {
  return JSON.stringify(bridge.app.swagger(), null, 2) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const bridge = await documentedBridge();
  try {
    writeFileSync(OPENAPI_FILE, renderOpenApi(bridge));
    console.log(`wrote ${OPENAPI_FILE}`);
  } finally {
    await bridge.close();
  }
}
