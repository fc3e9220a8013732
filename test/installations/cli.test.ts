import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decrypt, encrypt, generateKeySpec, parseKeyRing } from '../../src/infra/crypto/aes.js';
import { openDatabase } from '../../src/infra/db/index.js';
import { openTestStore, STORE } from '../helpers/store.js';

const run = promisify(execFile);

describe('ghl-bridge keys rotate / installations list (CLI)', () => {
  it('re-encrypts stored tokens with the first key and lists installations masked', async () => {
    const store = await openTestStore({ onDisk: true });
    const oldSpec = generateKeySpec('old');
    const newSpec = generateKeySpec('new');
    const old = parseKeyRing(oldSpec);
    const secret = 'eyJhbGciOiJSUzI1NiJ9.access-token-value-0123456789.sig';
    await store.db
      .insertInto('ghl_installations')
      .values({
        id: 'loc:L1',
        kind: 'location',
        company_id: 'C1',
        location_id: 'L1',
        user_type: 'Location',
        token_source: 'oauth',
        user_id: null,
        plan_id: null,
        status_reason: null,
        access_token_enc: encrypt(old, secret, 'ghl_installations:loc:L1:access'),
        refresh_token_enc: encrypt(old, 'refresh-token-value-0123456789', 'ghl_installations:loc:L1:refresh'),
        key_id: 'old',
        expires_at: new Date(Date.now() + 3600_000),
        refreshed_at: null,
        uninstalled_at: null,
      })
      .execute();
    // PGlite allows one process at a time: hand the store over to the CLI.
    if (STORE === 'pglite') await store.close();
    const env = {
      ...process.env,
      ...store.env,
      TOKEN_ENCRYPTION_KEYS: `${newSpec},${oldSpec}`,
      SANDBOX: 'true',
      LOG_LEVEL: 'silent',
    };
    const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env });
    const r = await cli('keys', 'rotate');
    expect(r.stdout).toMatch(/1 installation\(s\) re-encrypted with key new/);
    const list = await cli('installations', 'list');
    expect(list.stdout).toMatch(/loc:L1\tactive\toauth/);
    expect(list.stdout).not.toContain(secret);
    expect(list.stdout).toContain('eyJh…');

    const h = STORE === 'pglite' ? await openDatabase({ schema: store.schema, dataDir: store.env.DATA_DIR! }) : store;
    try {
      const row = await h.db
        .selectFrom('ghl_installations')
        .selectAll()
        .where('id', '=', 'loc:L1')
        .executeTakeFirstOrThrow();
      expect(row.key_id).toBe('new');
      expect(decrypt(parseKeyRing(newSpec), row.access_token_enc!, 'ghl_installations:loc:L1:access')).toBe(secret);
    } finally {
      await h.close();
    }
  });
});
