import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/app.js';
import { installationsModule, installationsServices } from '../../src/platform/installations/index.js';
import { createLogger } from '../../src/infra/log/logger.js';
import { dropSchema, testConfig } from '../helpers/store.js';
import { install, startGhl, type GhlWorld } from './harness.js';

let w: GhlWorld | undefined;
let bridge: (Bridge & { url: string }) | undefined;
let schemaToDrop: string | undefined;
afterEach(async () => {
  await bridge?.close();
  if (schemaToDrop) await dropSchema(schemaToDrop);
  await w?.emu.close();
  bridge = w = schemaToDrop = undefined;
});

describe('tokens never reach the logs', () => {
  it('install, refresh, 401 and invalid_grant at debug level: no token in any log line', async () => {
    w = await startGhl();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const config = testConfig({ ...w.env, LOG_LEVEL: 'debug' });
    const log = createLogger({ level: 'debug', secrets: config.secretValues, destination: sink });
    const world = w;
    const b = await createBridge(config, {
      log,
      modules: [installationsModule({ now: () => world.emu.clock.now() })],
      ...(config.DATABASE_URL ? {} : { dataDir: 'memory://' }),
    });
    if (config.DATABASE_URL) schemaToDrop = config.DATABASE_SCHEMA;
    bridge = Object.assign(b, { url: await b.listen(0) });
    const s = installationsServices(b.ctx.services);
    const loc = w.locationIds[0]!;
    expect((await install(bridge, { locationId: loc })).status).toBe(200);
    const tokens: string[] = [];
    const collect = async () => {
      const r = (await s.installations.getRow(`loc:${loc}`))!;
      tokens.push(
        s.tokenVault.open(r.id, 'access', r.access_token_enc)!,
        s.tokenVault.open(r.id, 'refresh', r.refresh_token_enc)!,
      );
    };
    await collect();
    w.emu.clock.advance(2 * 24 * 3600_000);
    await s.ghl.customFields.list(loc, { installation: { locationId: loc } });
    await collect();
    w.emu.control.revokeToken(tokens.at(-2)!);
    w.emu.control.revokeToken(tokens.at(-1)!);
    await expect(s.ghl.customFields.list(loc, { installation: { locationId: loc } })).rejects.toThrow(
      /re-authorization/,
    );
    const all = lines.join('');
    expect(all).toMatch(/re-authorization/); // the log is there…
    for (const t of tokens) {
      expect(all).not.toContain(t); // …without any token
      expect(all).not.toContain(t.slice(-24));
    }
    expect(all).not.toContain(w.clientSecret);
  });
});
