import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateKeySpec } from '../../src/infra/crypto/aes.js';

const run = promisify(execFile);

/** Env for a `ghl-bridge` CLI process on a test store: sandbox credentials, a fresh token key, quiet logs. */
export function cliEnv(storeEnv: Record<string, string>, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...storeEnv,
    TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
    SANDBOX: 'true',
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

/**
 * Runs the real CLI (`src/cli/main.ts` under tsx) with `env`: `cli` resolves with its output or rejects; `fails`
 * resolves with the exit code and stderr of a run expected to fail (code 0 if it did not).
 */
export function cliRunner(env: NodeJS.ProcessEnv) {
  const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env });
  const fails = (...args: string[]) =>
    cli(...args).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
  return { cli, fails };
}
