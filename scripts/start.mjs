#!/usr/bin/env node
// `npm start`: builds dist/ when it is missing or older than the sources, then runs `ghl-bridge start`
// in this very process. npm forwards SIGINT/SIGTERM to its script, and the script is this process,
// so a signal sent to `npm start` (Ctrl-C, Docker, systemd, PM2) reaches the bridge's own shutdown.
// Extra arguments go to the CLI: `npm start -- --help`.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'cli', 'main.js');
// tsc (incremental) writes this on every build that changed anything; touched after each build here.
const stamp = join(root, 'dist', '.tsbuildinfo');
// The operator console's front-end (src/console/web), built by Vite.
const webIndex = join(root, 'dist', 'web', 'index.html');

function newestMtime(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

function needsBuild() {
  if (!existsSync(entry) || !existsSync(stamp)) return 'dist/ is missing';
  if (!existsSync(webIndex)) return 'the console (dist/web) is missing';
  const built = statSync(stamp).mtimeMs;
  const inputs = [join(root, 'src'), join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json')];
  return Math.max(...inputs.map(newestMtime)) > built ? 'sources changed since the last build' : null;
}

/** Runs one build step (a node script) in a child; a signal to npm start stops it and exits. */
async function run(args) {
  const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
  const stop = (signal) => child.kill(signal);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const [code, signal] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  if (signal) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  if (code !== 0) process.exit(code ?? 1);
}

async function build(reason) {
  process.stderr.write(`npm start: building dist/ (${reason})\n`);
  const req = createRequire(import.meta.url);
  await run([req.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')]);
  const vite = join(dirname(req.resolve('vite/package.json')), 'bin', 'vite.js');
  await run([vite, 'build', '--config', join(root, 'src', 'console', 'web', 'vite.config.ts')]);
  const now = new Date();
  utimesSync(stamp, now, now);
}

const reason = needsBuild();
if (reason) await build(reason);
process.argv = [process.argv[0], entry, 'start', ...process.argv.slice(2)];
await import(pathToFileURL(entry).href);
