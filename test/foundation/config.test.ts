import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/infra/config/index.js';
import { createLogger } from '../../src/infra/log/logger.js';

function issues(env: Record<string, string>): Record<string, string> {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return Object.fromEntries(e.issues.map((i) => [i.name, i.message]));
    throw e;
  }
  return {};
}

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('configuration', () => {
  it('starts with no variables at all (sandbox defaults)', () => {
    const c = loadConfig({});
    expect(c.sandbox).toBe(true);
    expect(c.PORT).toBe(3000);
    expect(c.DATA_DIR).toBe('./data');
    expect(c.publicUrl).toBe('http://localhost:3000');
  });

  it('gives each invalid variable its own message naming it, what was expected and an example', () => {
    const found = issues({
      PORT: 'eighty',
      LOG_LEVEL: 'loud',
      DATABASE_URL: 'mysql://x',
      WORKER_CONCURRENCY: '-3',
      PUBLIC_URL: 'not a url',
      TOKEN_ENCRYPTION_KEYS: 'k1:short',
      WEBHOOK_ACCEPT_LEGACY_RSA: 'maybe',
      GHL_CLIENT_ID: 'no_dash',
    });
    expect(Object.keys(found).sort()).toEqual(
      [
        'DATABASE_URL',
        'GHL_CLIENT_ID',
        'LOG_LEVEL',
        'PORT',
        'PUBLIC_URL',
        'TOKEN_ENCRYPTION_KEYS',
        'WEBHOOK_ACCEPT_LEGACY_RSA',
        'WORKER_CONCURRENCY',
      ].sort(),
    );
    expect(found.PORT).toMatch(/whole number.*"eighty".*example: PORT=3000/);
    expect(found.LOG_LEVEL).toMatch(/one of fatal, error/);
    expect(found.DATABASE_URL).toMatch(/postgres:\/\//);
    expect(found.WORKER_CONCURRENCY).toMatch(/whole number/);
    expect(found.PUBLIC_URL).toMatch(/absolute URL/);
    expect(found.TOKEN_ENCRYPTION_KEYS).toMatch(/32-byte keys/);
    expect(found.WEBHOOK_ACCEPT_LEGACY_RSA).toMatch(/true or false/);
    expect(found.GHL_CLIENT_ID).toMatch(/<appId>-<suffix>/);
  });

  it("the replay window defaults to GHL's 429-retry horizon and must be shorter than the retention of dedupe keys", () => {
    expect(loadConfig({}).WEBHOOK_TOLERANCE_SEC).toBe(7200);
    expect(() => loadConfig({ DATA_RETENTION_DAYS: '1', WEBHOOK_TOLERANCE_SEC: '86400' })).toThrow(
      /WEBHOOK_TOLERANCE_SEC: expected less than DATA_RETENTION_DAYS/,
    );
    expect(loadConfig({ DATA_RETENTION_DAYS: '0', WEBHOOK_TOLERANCE_SEC: '86400' }).WEBHOOK_TOLERANCE_SEC).toBe(86400);
  });

  it('never echoes the value of a secret variable in an error', () => {
    const secret = 'postgres-password-xyz';
    const found = issues({ DATABASE_URL: `mysql://u:${secret}@h/db`, ADMIN_API_KEY: 'short-secret' });
    expect(found.DATABASE_URL).toContain('value hidden');
    expect(JSON.stringify(found)).not.toContain(secret);
    expect(JSON.stringify(found)).not.toContain('short-secret');
  });

  it('requires both GHL credentials together, and the encryption key outside sandbox mode', () => {
    expect(Object.keys(issues({ GHL_CLIENT_ID: 'abc-def' }))).toEqual(['GHL_CLIENT_SECRET']);
    const prod = issues({ GHL_CLIENT_ID: 'abc-def', GHL_CLIENT_SECRET: 'secret-123456' });
    expect(Object.keys(prod)).toEqual(['TOKEN_ENCRYPTION_KEYS']);
    const ok = loadConfig({
      GHL_CLIENT_ID: 'abc-def',
      GHL_CLIENT_SECRET: 'secret-123456',
      TOKEN_ENCRYPTION_KEYS: `k1:${KEY}`,
    });
    expect(ok.sandbox).toBe(false);
  });

  it('refuses the insecure webhook mode with production settings', () => {
    expect(Object.keys(issues({ WEBHOOK_INSECURE_SKIP_VERIFY: 'true', NODE_ENV: 'production' }))).toEqual([
      'WEBHOOK_INSECURE_SKIP_VERIFY',
    ]);
    expect(
      Object.keys(
        issues({
          WEBHOOK_INSECURE_SKIP_VERIFY: 'true',
          GHL_CLIENT_ID: 'abc-def',
          GHL_CLIENT_SECRET: 'secret-123456',
          TOKEN_ENCRYPTION_KEYS: `k1:${KEY}`,
        }),
      ),
    ).toEqual(['WEBHOOK_INSECURE_SKIP_VERIFY']);
    expect(loadConfig({ WEBHOOK_INSECURE_SKIP_VERIFY: 'true' }).WEBHOOK_INSECURE_SKIP_VERIFY).toBe(true);
  });

  it('keeps every configured secret out of log lines, wherever it appears', () => {
    const env = {
      GHL_CLIENT_ID: 'abc-def',
      GHL_CLIENT_SECRET: 'client-secret-value-42',
      TOKEN_ENCRYPTION_KEYS: `k1:${KEY}`,
      ADMIN_API_KEY: 'admin-key-aaaaaaaaaaaaaaaaaaaaaaaa',
      DATABASE_URL: 'postgres://bridge:db-pass-777@localhost/db',
    };
    const config = loadConfig(env);
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = createLogger({ level: 'info', secrets: config.secretValues, destination: sink });
    log.info({ config }, 'config dump');
    log.info(`message with ${env.GHL_CLIENT_SECRET} inline and ${env.ADMIN_API_KEY}`);
    log.error({ err: new Error(`connect failed for ${env.DATABASE_URL}`) }, 'db error');
    log.info(
      { headers: { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl' } },
      'req',
    );
    log.info({ access_token: 'opaque-token-value', nested: { refresh_token: 'opaque-refresh' } }, 'tokens');
    for (const s of [
      env.GHL_CLIENT_SECRET,
      KEY,
      env.ADMIN_API_KEY,
      'db-pass-777',
      'opaque-token-value',
      'opaque-refresh',
      'c2lnbmF0dXJlLXZhbHVl',
    ])
      expect(out, `secret ${s.slice(0, 6)}… leaked`).not.toContain(s);
    expect(out).toContain('[REDACTED]');
    expect(out).toContain('config dump');
  });
});
