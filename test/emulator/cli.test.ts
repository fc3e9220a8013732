import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/emulator-cli.ts', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));

describe('ghl-bridge emulator (standalone)', () => {
  it('starts, seeds a demo app, serves the GHL surface and stops on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [tsx, fixture, 'emulator', '--port', '0', '--seed', '3', '--bridge-url', 'http://127.0.0.1:9'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('END PUBLIC KEY')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`exited early (${String(code)}): ${out}`)));
    });
    await ready;
    const base = /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? '';
    const clientId = /app clientId\s+(\S+)/.exec(out)?.[1] ?? '';
    const clientSecret = /app clientSecret\s+(\S+)/.exec(out)?.[1] ?? '';
    const locationId = /location\s+(\S+)/.exec(out)?.[1] ?? '';
    expect(clientId).toMatch(/^[0-9a-f]{24}-[a-z0-9]{8}$/);
    const keys = (await (await fetch(`${base}/_emulator/keys`)).json()) as Record<string, string>;
    expect(keys.ed25519PublicKeyPem).toContain('BEGIN PUBLIC KEY');
    const pick = await fetch(`${base}/v2/oauth/chooselocation?client_id=${clientId}&locationId=${locationId}&state=s`, {
      redirect: 'manual',
    });
    expect(pick.status).toBe(302);
    const code = new URL(pick.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const tok = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: clientId,
        client_secret: clientSecret,
        grant_type: 'authorization_code',
        code,
      }),
    });
    expect(tok.status).toBe(200);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code2] = (await exited) as [number | null];
    expect(code2).toBe(0);
    expect(out).toContain('SIGTERM: stopping emulator');
  });

  it('exposes token lifetime and rate limits as flags; a bad value exits 2 naming the flag', async () => {
    const { emulatorOptions } = await import('../../src/cli/commands/emulator.js');
    expect(emulatorOptions({ port: '0', host: 'h', accessTokenTtlSec: '120', rateLimit: '5/1000/50' })).toEqual({
      accessTokenTtlSec: 120,
      rateLimit: { burst: 5, intervalMs: 1000, daily: 50 },
    });
    expect(emulatorOptions({ port: '0', host: 'h', rateLimit: false }).rateLimit!.burst).toBeGreaterThan(1e6);
    const child = spawn(process.execPath, [tsx, fixture, 'emulator', '--port', '0', '--access-token-ttl-sec', 'soon'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(2);
    expect(err).toMatch(/invalid --access-token-ttl-sec soon: expected a whole number/);
  });
});
