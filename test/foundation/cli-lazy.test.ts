import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../fixtures/child.js';
import { tempDataDir } from '../helpers/store.js';

/** Runs the CLI from source and returns the src/ files it loaded (relative paths). */
function loaded(args: string[], env: Record<string, string> = {}): Promise<string[]> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--import', './test/fixtures/record-imports.mjs', 'src/cli/main.ts', ...args],
      { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent', ...env }, timeout: 60_000 },
      (_err, _stdout, stderr) => {
        const line = stderr.split('\n').find((l) => l.startsWith('LOADED '));
        const urls = line ? (JSON.parse(line.slice(7)) as string[]) : [];
        resolve(
          urls
            .filter((u) => u.startsWith('file://') && u.includes('/src/'))
            .map((u) => u.slice(u.indexOf('/src/') + 1)),
        );
      },
    );
  });
}

describe('CLI start-up loads only the command that runs', () => {
  it('`config` loads neither the bridge nor the emulator; `start` outside sandbox mode never loads the emulator', async () => {
    const cfg = await loaded(['config']);
    expect(cfg).toContain('src/cli/commands/config.ts');
    expect(
      cfg.filter((f) => f.startsWith('src/emulator/') || f === 'src/app.ts' || f.startsWith('src/cli/commands/start')),
    ).toEqual([]);

    // Invalid configuration: start exits at validation, after loading its own command only.
    const start = await loaded(['start'], {
      SANDBOX: 'false',
      GHL_CLIENT_ID: 'x',
      GHL_CLIENT_SECRET: 'y',
      PORT: 'not-a-port',
      DATA_DIR: tempDataDir(),
    });
    expect(start).toContain('src/cli/commands/start.ts');
    expect(
      start.filter(
        (f) =>
          f.startsWith('src/emulator/') || f.startsWith('src/sandbox/') || f.startsWith('src/cli/commands/emulator'),
      ),
    ).toEqual([]);

    // Help still lists every command.
    const help = await loaded(['--help']);
    expect(help).toContain('src/cli/commands/emulator.ts');
  }, 90_000);
});
