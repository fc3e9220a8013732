import { afterEach, describe, expect, it } from 'vitest';
import { installationsModule, installationsServices } from '../../src/platform/installations/index.js';
import { startTestBridge, type TestBridge } from '../helpers/store.js';

let b: TestBridge | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

describe('sandbox mode', () => {
  it('starts without TOKEN_ENCRYPTION_KEYS or app credentials; install routes say what is missing', async () => {
    b = await startTestBridge({ modules: [installationsModule({ reconcileIntervalMs: 0 })], env: { SANDBOX: 'true' } });
    expect(b.ctx.config.sandbox).toBe(true);
    const s = installationsServices(b.ctx.services);
    // A generated key works for sealing and opening.
    expect(s.tokenVault.open('loc:x', 'access', s.tokenVault.seal('loc:x', 'access', 'token-value-123'))).toBe(
      'token-value-123',
    );
    const r = await fetch(`${b.url}/oauth/install`, { redirect: 'manual' });
    expect(r.status).toBe(503);
    expect(await r.text()).toMatch(/GHL_CLIENT_ID/);
  });
});
