/**
 * Spawn-to-ready of the built CLI (`npm run build` first): restarts `node dist/cli/main.js start` with a real
 * (non-sandbox) configuration on an existing store (the single-replica restart: the embedded store in one data
 * directory, or PostgreSQL at BENCH_DATABASE_URL), polls /readyz every 5 ms and reports the time from spawn to the
 * first 200; also the time `node dist/cli/main.js --help` takes. Median of BENCH_RUNS (default 7) runs each, after
 * one warm-up start that creates the store.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeySpec } from '../src/infra/crypto/aes.js';

const runs = Number(process.env.BENCH_RUNS ?? 7);
// BENCH_CLI: the built entry point to measure (default dist/cli/main.js), e.g. a copy of an older build to compare.
const cli = process.env.BENCH_CLI ?? 'dist/cli/main.js';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const dir = mkdtempSync(join(tmpdir(), 'ghl-bridge-startup-'));
const keys = generateKeySpec('k1');
const pg = process.env.BENCH_DATABASE_URL;

/** CPU time (user + system, ms) the process has used so far (Linux /proc; NaN elsewhere). Less sensitive than wall
 * time to other load on the machine. */
function cpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}
const cpu: number[] = [];

async function once(): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [cli, 'start'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      ...(pg ? { DATABASE_URL: pg, DATABASE_SCHEMA: 'bench_startup' } : { DATA_DIR: dir }),
      SANDBOX: 'false',
      GHL_CLIENT_ID: '68a32958b5154ca8bbdc4d40-meh5chaj',
      GHL_CLIENT_SECRET: 'bench-secret',
      TOKEN_ENCRYPTION_KEYS: keys,
      GHL_RECONCILE_INTERVAL_MIN: '0',
    },
    stdio: 'ignore',
  });
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) {
        const wall = performance.now() - started;
        cpu.push(cpuMs(child.pid));
        return wall;
      }
      if (child.exitCode !== null) throw new Error(`bridge exited with ${child.exitCode}`);
      if (performance.now() - started > 60_000) throw new Error('not ready within 60 s');
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

await once(); // creates and migrates the store
cpu.length = 0;

const ready: number[] = [];
const help: number[] = [];
for (let i = 0; i < runs; i++) {
  ready.push(await once());
  const t = performance.now();
  spawnSync(process.execPath, [cli, '--help'], { stdio: 'ignore' });
  help.push(performance.now() - t);
}
rmSync(dir, { recursive: true, force: true });
console.log(
  `spawn → /readyz 200 (restart on ${pg ? 'PostgreSQL' : 'the embedded store'}, ${runs} runs): median ${median(ready).toFixed(0)} ms (min ${Math.min(...ready).toFixed(0)}, max ${Math.max(...ready).toFixed(0)})`,
);
console.log(
  `  CPU time of the bridge process until ready: median ${median(cpu).toFixed(0)} ms (min ${Math.min(...cpu).toFixed(0)}, max ${Math.max(...cpu).toFixed(0)})`,
);
console.log(
  `--help: median ${median(help).toFixed(0)} ms (min ${Math.min(...help).toFixed(0)}, max ${Math.max(...help).toFixed(0)})`,
);
