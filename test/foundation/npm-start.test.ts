import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../fixtures/child.js';
import { freePort } from '../helpers/net.js';
import { tempDataDir, waitFor } from '../helpers/store.js';

// `npm start` as a user (or Docker, systemd, PM2) runs it, in a copy of the repository without dist/
// (a fresh clone after `npm ci`): node_modules is linked, everything else the launcher reads is copied.
const clone = mkdtempSync(join(tmpdir(), 'ghl-bridge-clone-'));
for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'scripts'])
  cpSync(join(ROOT, f), join(clone, f), { recursive: true });
symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
afterAll(() => rmSync(clone, { recursive: true, force: true }));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

async function npmStart(signal: NodeJS.Signals) {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    EMULATOR_PORT: '0',
    DATA_DIR: tempDataDir(),
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT_MS: '5000',
  };
  for (const k of ['DATABASE_URL', 'GHL_CLIENT_ID', 'GHL_CLIENT_SECRET', 'NODE_OPTIONS']) delete env[k];
  const npm = spawn('npm', ['start'], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let bridgePid = 0;
  const exited = once(npm, 'exit').then(([code, sig]) => ({
    code: code as number | null,
    signal: sig as string | null,
  }));
  try {
    // The text is console.log'd, the log line goes through pino: either may come out first.
    const started = /"pid":(\d+).*"msg":"ghl-bridge started"/;
    await waitFor(() => out.includes('Stop with Ctrl-C') && started.test(out), {
      timeoutMs: 180_000,
      what: `npm start to be ready; output:\n${out}`,
    });
    bridgePid = Number(started.exec(out)![1]);
    expect(bridgePid).toBeGreaterThan(0);
    expect(await listening(port)).toBe(true);
    process.kill(npm.pid!, signal);
    await waitFor(() => !alive(npm.pid!) && !alive(bridgePid), {
      timeoutMs: 10_000,
      what: `npm (${npm.pid}) and the bridge (${bridgePid}) to exit after ${signal}; output:\n${out}`,
    });
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(await listening(port)).toBe(false);
    return { out };
  } finally {
    npm.kill('SIGKILL');
    bridgePid ||= Number(/"pid":(\d+)/.exec(out)?.[1] ?? 0);
    if (bridgePid && alive(bridgePid)) process.kill(bridgePid, 'SIGKILL'); // a bridge npm left behind
  }
}

// Each build compiles the TypeScript and bundles the console (Vite): slow on a loaded machine.
describe('npm start', { timeout: 180_000 }, () => {
  it('is also a library: dist/index.js exports createBridge with its types', async () => {
    const build = spawn('npm', ['run', 'build', '--silent'], { cwd: clone, stdio: 'inherit' });
    expect((await once(build, 'exit'))[0]).toBe(0);
    expect(readFileSync(join(clone, 'dist', 'index.d.ts'), 'utf8')).toMatch(/createBridge/);
    // The package resolves itself by name through its `exports`, as a dependent would.
    const probe = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('ghl-bridge'); console.log(typeof m.createBridge, typeof m.bridgeModules, typeof m.loadConfig)",
      ],
      { cwd: clone, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let printed = '';
    probe.stdout.on('data', (d: Buffer) => (printed += d.toString()));
    expect((await once(probe, 'exit'))[0]).toBe(0);
    expect(printed.trim()).toBe('function function function');
    rmSync(join(clone, 'dist'), { recursive: true, force: true }); // the next test starts from a fresh clone again
  });

  it('builds a fresh clone, prints what to try, and stops on SIGINT sent to npm', async () => {
    expect(existsSync(join(clone, 'dist'))).toBe(false);
    const { out } = await npmStart('SIGINT');
    expect(out).toContain('building dist/ (dist/ is missing)');
    expect(existsSync(join(clone, 'dist', 'cli', 'main.js'))).toBe(true);
    // The operator console's front-end is built too (served from dist/web, no CDN).
    expect(existsSync(join(clone, 'dist', 'web', 'index.html'))).toBe(true);
    expect(out).toMatch(/Try it — send an SMS as a GHL user/);
    expect(out).toContain('stopped cleanly');
  });

  it('does not rebuild an up-to-date dist/, and stops on SIGTERM sent to npm', async () => {
    const { out } = await npmStart('SIGTERM');
    expect(out).not.toContain('building dist/');
    expect(out).toContain('"signal":"SIGTERM"');
    expect(out).toContain('stopped cleanly');
  });
});
