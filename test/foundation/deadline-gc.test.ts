import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../fixtures/child.js';

const run = promisify(execFile);

describe('request deadlines survive garbage collection', () => {
  // nodejs/node#57736: AbortSignal.any([signal, AbortSignal.timeout(ms)]) loses the timeout in a full GC on Node 20.
  it('channel sends, GHL API calls and token calls to a peer that never answers time out at 1 s under forced full GCs', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/fixtures/gc-deadline.ts'], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'silent', GC_CALLS: '5' },
      timeout: 60_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as {
      results: Array<{ what: string; ms: number; outcome: string }>;
    };
    expect(out.results).toHaveLength(20);
    for (const r of out.results) {
      expect(r.outcome, r.what).toMatch(/^rejected: .*timed out/);
      // 1 s deadline; the fixture gives up at 8 s ("hung"). Generous margin for a busy 2-core machine.
      expect(r.ms, r.what).toBeLessThan(5000);
    }
  }, 90_000);
});
