import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * vitest globalSetup: the bridge serves the operator console from dist/web; build it once when it is missing (a
 * checkout where only the tests run, without `npm run build`), so tests of /admin see the real page.
 */
export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  if (existsSync(join(root, 'dist', 'web', 'index.html'))) return;
  const vite = join(dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');
  execFileSync(process.execPath, [vite, 'build', '--config', join(root, 'src', 'console', 'web', 'vite.config.ts')], {
    cwd: root,
    stdio: 'inherit',
  });
}
