import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { tempDataDir } from '../helpers/store.js';
import { spawnTs } from '../fixtures/child.js';

describe('ghl-bridge start (sandbox, embedded store)', () => {
  it('starts with no configuration, answers /readyz, installs the demo app, and stops cleanly on SIGINT', async () => {
    const port = await freePort();
    const child = spawnTs('src/cli/main.ts', ['start'], {
      DATA_DIR: tempDataDir(),
      PORT: String(port),
      EMULATOR_PORT: '0',
      LOG_LEVEL: 'info',
    });
    try {
      await child.waitForLine(/Stop with Ctrl-C/, 60_000);
      const url = /running at (http:\/\/\S+)/.exec(child.output())![1]!;
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(200);
      expect(child.output()).toMatch(/installed: demo location \w+/);
      expect(child.output()).not.toMatch(/sandbox setup failed/);
      child.proc.kill('SIGINT');
      expect(await child.exited).toBe(0);
      expect(child.output()).toContain('stopped cleanly');
    } finally {
      child.proc.kill('SIGKILL');
    }
  });

  it('fails at start with every bad variable named, and exit status 2', async () => {
    const child = spawnTs('src/cli/main.ts', ['start'], {
      PORT: 'x',
      WORKER_CONCURRENCY: 'many',
      DATA_DIR: tempDataDir(),
    });
    expect(await child.exited).toBe(2);
    expect(child.output()).toMatch(/PORT: expected a whole number/);
    expect(child.output()).toMatch(/WORKER_CONCURRENCY: expected a whole number/);
  });
});
