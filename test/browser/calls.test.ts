import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callsModule } from '../../src/capabilities/calls/index.js';
import { dashboardModule } from '../../src/console/index.js';
import { generateKeySpec } from '../../src/infra/crypto/aes.js';
import { apiKeysModule } from '../../src/platform/apikeys/index.js';
import { startTestBridge, STORE, type TestBridge } from '../helpers/store.js';

/**
 * The console's "Call payloads" screen (issue 15) in Chromium: workflow payloads the bridge kept without making a
 * call are listed with time, location, reason and an excerpt whose secrets and personal data are masked.
 */
const KEY = 'browser-calls-admin-key-0123456789';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const axeSource = createRequire(import.meta.url)('axe-core').source as string;
const LOC = 'LocCallsBrowser01';

let b: TestBridge;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  b = await startTestBridge({
    modules: [apiKeysModule(), callsModule(), dashboardModule()],
    env: { ADMIN_API_KEY: KEY, TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1') },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-sync'],
  });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
});

afterAll(async () => {
  await browser?.close();
  await b?.close();
});

describe(`console: rejected call payloads (${STORE})`, () => {
  it('lists unmappable payloads with the reason and a masked excerpt', async () => {
    const url = (await b.ctx.services.get('calls').endpoints.url(LOC)).replace(/^https?:\/\/[^/]+/, b.url);
    const post = (body: unknown) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // GHL's standard payload shape without any call details; the contact's personal data and a secret in it.
    const r1 = await post({
      contact_id: 'ContactBrowser1',
      full_name: 'Ada Lovelace',
      email: 'ada@example.com',
      phone: '+14155552671',
      location: { id: LOC },
      customData: { note: 'call me on +1 415 555 2671', apiKey: 'sk_live_dont_show_me' },
    });
    expect(r1.status).toBe(202);
    const r2 = await post({ hello: 'world' });
    expect(((await r2.json()) as { state: string }).state).toBe('unmappable');

    await page.goto(`${b.url}/admin`);
    await page.getByLabel('Admin key').fill(KEY);
    await page.getByRole('button', { name: 'Log in' }).click();
    // The bridge runs no installations module, so the overview has little to show: go straight to the screen.
    await page.getByRole('link', { name: 'Call payloads' }).click();
    await page.getByRole('heading', { level: 1, name: 'Rejected call payloads' }).waitFor();
    const rows = page.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const text = (await page.locator('tbody').textContent()) ?? '';
    expect(text).toContain(LOC);
    expect(text).toContain('no call details: none of status');
    expect(text).toContain('contactId: no value at /contact_id');
    expect(text).toContain('ContactBrowser1');
    for (const secret of ['Ada Lovelace', 'ada@example.com', '4155552671', '415 555 2671', 'sk_live_dont_show_me'])
      expect(text).not.toContain(secret);
    expect(text).toContain('••••••');

    // Filter by kind: nothing was forged.
    await page.getByLabel('Reason kind').selectOption('forged');
    await page.getByText('No rejected call payloads.').waitFor();

    await page.evaluate(axeSource);
    const result = (await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")) as {
      violations: Array<{ id: string; impact: string }>;
    };
    expect(result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
  });
});
