import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startImports, type ImportWorld } from './harness.js';

const run = promisify(execFile);

/** `ghl-bridge import …` against a running bridge (in this process), through its /v1 API. */
let x: ImportWorld;
beforeAll(async () => {
  x = await startImports({ locations: 1 });
}, 60_000);
afterAll(async () => x?.close());

describe('ghl-bridge import (CLI)', () => {
  it('start --follow draws the progress bar to completion; status, decide and export; bad input exits 2', async () => {
    const loc = x.w.locationIds[0]!;
    x.bulk({ locationId: loc, count: 1200, seed: 4 });
    // No .env, no store: the CLI needs only the bridge URL and a key.
    const env = { PATH: process.env.PATH ?? '', BRIDGE_URL: x.b.url, ADMIN_API_KEY: ADMIN };
    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'import', ...args], { env });
    const fails = (...args: string[]) =>
      cli(...args).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );

    const started = await cli('start', loc, '--page-size', '200', '--follow', '--interval', '50');
    const final = JSON.parse(started.stdout.trim().split('\n').at(-1)!) as {
      id: string;
      status: string;
      rowsDone: number;
    };
    expect(final).toMatchObject({ status: 'completed', rowsDone: 1200 });
    // Not a terminal: one line per change, ending with the full bar.
    const bars = started.stderr.split('\n').filter((l) => l.startsWith('['));
    expect(bars.at(-1)).toMatch(
      /^\[█{30}\] 100\.0% {2}1,200\/1,200 rows · 7 pages · [\d,]+ rows\/s · ETA 0s · 0 duplicate groups · completed$/,
    );
    expect(started.stderr).toMatch(new RegExp(`import ${final.id} started for location ${loc}`));

    const status = await cli('status', loc);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: final.id, status: 'completed', pagesDone: 7 });

    const ids = x.w.emu.control
      .listContacts({ locationId: loc })
      .map((c) => c.id)
      .sort()
      .slice(0, 3);
    const d = await cli('decide', loc, final.id, 'approve', ids[0]!, ids[1]!);
    expect(JSON.parse(d.stdout)).toEqual({ applied: 2, refused: 0 });
    const m = await fails('decide', loc, final.id, 'merge', ids[2]!, '--into', ids[2]!);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/body\.decisions\.0\.into: expected another contact than the one merged/);
    const out = await cli('export', loc, final.id);
    expect(
      out.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { contactId: string }).contactId),
    ).toEqual([ids[0], ids[1]]);

    const bad = await fails('start', 'not a location!');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid locationId/);
    const page = await fails('start', loc, '--page-size', '501');
    expect(page.code).toBe(2);
    expect(page.stderr).toMatch(/invalid --page-size: expected 1–500/);
    const noMerge = await fails('decide', loc, final.id, 'merge', ids[0]!);
    expect(noMerge.code).toBe(2);
    expect(noMerge.stderr).toMatch(/merge needs --into/);
    const cancelDone = await fails('cancel', loc, final.id);
    expect(cancelDone.code).toBe(1);
    expect(cancelDone.stderr).toMatch(/error: 409 import .* is completed; only a running import can be cancelled/);
  }, 180_000);
});
