import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BridgeModule } from '../../src/app.js';
import { createBridge, type Bridge } from '../../src/app.js';
import { dashboardModule } from '../../src/console/index.js';
import { createLogger } from '../../src/infra/log/logger.js';
import { enqueue, getJob, PermanentJobError } from '../../src/infra/queue/index.js';
import { bridgeModules } from '../../src/modules.js';
import { sandboxModule, startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { freePort } from '../helpers/net.js';
import { dropSchema, STORE, testConfig, waitFor } from '../helpers/store.js';

/**
 * The operator console in a real browser (issue 17): Debian's Chromium through playwright-core, against a sandbox
 * bridge (GHL emulator in-process, demo location installed through OAuth, loopback channel). Each screen is checked
 * with axe-core (no serious or critical violation) and photographed into docs/console/.
 */
const KEY = 'browser-test-admin-key-0123456789';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const axeSource = createRequire(import.meta.url)('axe-core').source as string;
// The checked-in screenshots and figures are rewritten only on request (UPDATE_SCREENSHOTS=1 npm run test:browser);
// otherwise they go to a temporary directory, so a test run never dirties the work tree.
const SHOTS = process.env.UPDATE_SCREENSHOTS
  ? new URL('../../docs/console/', import.meta.url)
  : pathToFileURL(mkdtempSync(join(tmpdir(), 'console-shots-')) + '/');

let sandbox: Sandbox;
let bridge: Bridge;
let url: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let channel: Server;
let channelUp = false;
const cspErrors: string[] = [];
const figures: Record<string, number> = {};

/**
 * An external channel for a test job kind: while "down" it answers 503 and the job dies (PermanentJobError, as a
 * handler does for a refusal it will not retry); once up, a retried job succeeds.
 */
const channelJob = (channelUrl: () => string): BridgeModule => ({
  name: 'browser-test-channel',
  init(ctx) {
    ctx.queue.register('test.channel-send', async () => {
      const r = await fetch(channelUrl(), { method: 'POST', body: '{}' });
      if (!r.ok) throw new PermanentJobError(`channel answered ${r.status}: channel down`);
    });
  },
});

async function axe(name: string) {
  await page.evaluate(axeSource);
  // Evaluated in the page (strings: the test's own TypeScript has no DOM types).
  const result = (await page.evaluate("axe.run(document, { resultTypes: ['violations'] })")) as {
    violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }>;
  };
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(
    bad.map((v) => `${name}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
  ).toEqual([]);
}

async function shot(name: string) {
  await page.screenshot({ path: new URL(`${name}.png`, SHOTS).pathname, fullPage: true });
}

async function go(hash: string, heading: string | RegExp) {
  await page.goto(`${url}/admin#${hash}`);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

beforeAll(async () => {
  channel = createServer((req, res) => {
    req.resume();
    res.writeHead(channelUp ? 200 : 503).end();
  });
  await new Promise<void>((r) => channel.listen(0, '127.0.0.1', r));
  const channelUrl = `http://127.0.0.1:${(channel.address() as AddressInfo).port}/send`;

  const log = createLogger({ level: 'silent' });
  const port = await freePort();
  sandbox = await startSandbox(
    testConfig({ PORT: String(port), EMULATOR_PORT: '0', DATA_DIR: 'memory://', ADMIN_API_KEY: KEY }),
    log,
  );
  const modules = (await bridgeModules(sandbox.config, { webhookKeys: sandbox.webhookKeys })).map((m) =>
    m.name === 'dashboard' ? dashboardModule({ sampleMs: 500 }) : m,
  );
  modules.push(
    sandboxModule(sandbox),
    channelJob(() => channelUrl),
  );
  bridge = await createBridge(sandbox.config, { log, modules, dataDir: 'memory://' });
  url = await bridge.listen(port);
  await sandbox.afterListen(url, bridge.ctx.services);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--metrics-recording-only',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await bridge?.close();
  await sandbox?.close();
  if (bridge?.ctx.config.DATABASE_URL) await dropSchema(bridge.ctx.config.DATABASE_SCHEMA);
  await new Promise((r) => channel?.close(r));
  if (Object.keys(figures).length) {
    console.log('console figures:', JSON.stringify(figures));
    writeFileSync(new URL('figures.json', SHOTS), JSON.stringify(figures, null, 2) + '\n');
  }
});

describe(`operator console in Chromium (${STORE})`, () => {
  it('refuses a wrong key, logs in with the right one and shows the live overview', async () => {
    const t0 = Date.now();
    await page.goto(`${url}/admin`);
    await page.getByLabel('Admin key').waitFor();
    figures.loginFormMs = Date.now() - t0;
    await axe('login');
    await shot('login');
    await page.getByLabel('Admin key').fill('not-the-admin-key');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('wrong admin key');

    await page.getByLabel('Admin key').fill(KEY);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: /Overview/ }).waitFor();
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'ghlb_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(session.value).not.toContain(KEY);
    // Server-sent samples arrive (one every 500 ms here).
    await page.getByText('● live').waitFor();
    await expect.poll(() => page.locator('.uplot').count()).toBeGreaterThanOrEqual(4);

    // First render of an authenticated reload: navigation start → overview charts drawn.
    const t1 = Date.now();
    await page.reload();
    await page.locator('.uplot').first().waitFor();
    figures.overviewFirstRenderMs = Date.now() - t1;
    figures.overviewDomContentLoadedMs = (await page.evaluate(
      "Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd)",
    )) as number;
    await axe('overview');
    await shot('overview');
  });

  it('sends an SMS through the emulator and finds its trace by message id with every step', async () => {
    const { locationId, contactId } = sandbox.seed;
    const sent = sandbox.emulator.control.sendMessageAsUser({
      locationId,
      contactId,
      type: 'SMS',
      message: 'Trace me',
    });
    await waitFor(() => sandbox.emulator.control.getMessage(sent.id)?.status === 'delivered', {
      what: 'SMS delivered',
    });
    await waitFor(
      async () =>
        (
          await bridge.ctx.db
            .selectFrom('provider_outbound')
            .select('reported_at')
            .where('message_id', '=', sent.id)
            .executeTakeFirst()
        )?.reported_at,
      { what: 'status reported to GHL' },
    );
    await go('/trace', 'Message trace');
    await page.getByLabel(/GHL message id/).fill(sent.id);
    await page.getByRole('button', { name: 'Search' }).click();
    const timeline = page.getByRole('list', { name: 'Timeline' });
    await timeline.waitFor();
    await expect
      .poll(async () => timeline.locator('li').evaluateAll((els) => els.map((e) => e.getAttribute('data-step'))))
      .toEqual(
        expect.arrayContaining([
          'webhook',
          'received',
          'confirmed',
          'claimed',
          'attempt',
          'sent',
          'receipt',
          'reported',
        ]),
      );
    const text = await timeline.textContent();
    expect(text).toContain('unsigned'); // the Delivery-URL call
    expect(text).toMatch(/signed (ed25519|rsa)/); // the OutboundMessage event that confirmed it
    expect(text).toContain('GHL accepted status delivered');
    expect(text).toContain('channel send attempt 1: delivered');
    // Search by the contact finds it too.
    await go(`/trace?q=${contactId}`, 'Message trace');
    await page.getByRole('link', { name: sent.id }).waitFor();
    await page.getByRole('link', { name: sent.id }).click();
    await timeline.waitFor();
    await axe('trace');
    await shot('trace');
  });

  it('shows a job that died while the channel was down, retries it and watches it succeed', async () => {
    const [id] = await enqueue(bridge.ctx.db, {
      kind: 'test.channel-send',
      payload: { messageId: 'dead-demo', apiKey: 'sk_live_should_never_show' },
      scope: `loc:${sandbox.seed.locationId}`,
      maxAttempts: 1,
    });
    bridge.ctx.queue.notify();
    await waitFor(async () => (await getJob(bridge.ctx.db, id!))?.state === 'dead', { what: 'job dead' });
    await go('/jobs', 'Dead jobs');
    const row = page.getByRole('row', { name: new RegExp(`test.channel-send`) });
    await row.waitFor();
    expect(await row.textContent()).toContain('channel answered 503');
    await page.getByRole('button', { name: `View ${id}` }).click();
    const payload = page.getByLabel(`job ${id} payload`, { exact: true });
    await payload.waitFor();
    expect(await payload.textContent()).not.toContain('sk_live_should_never_show');
    await axe('dead-jobs');
    await shot('dead-jobs');

    // The message's trace offers the retry too (a dead job is safe to retry).
    await go('/trace?id=dead-demo', 'Message trace');
    await page.getByRole('button', { name: `Retry job ${id}` }).waitFor();

    channelUp = true;
    await go('/jobs', 'Dead jobs');
    await page.getByLabel(`select job ${id}`).check();
    await page.getByRole('button', { name: 'Retry selected (1)' }).click();
    await page.getByRole('status').filter({ hasText: 'Retried 1 job(s).' }).waitFor();
    await waitFor(async () => (await getJob(bridge.ctx.db, id!)) === undefined, { what: 'retried job done' });
    await page.getByText('No dead jobs.').waitFor();

    await go('/webhooks', 'Webhook events');
    await page.getByLabel('Status').selectOption('');
    await page
      .getByRole('button', { name: /^View \d+$/ })
      .first()
      .click();
    await page
      .getByLabel(/^event \d+ payload$/)
      .last()
      .waitFor();
    await axe('webhooks');
    await shot('webhooks');
  });

  it('rotates the delivery token (masked before and after)', async () => {
    const provider = bridge.ctx.services.get('provider');
    const before = await provider.tokens.current();
    await go('/settings', 'Settings');
    const shown = await page.getByTestId('delivery-url').textContent();
    expect(shown).not.toContain(before);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Rotate delivery token' }).click();
    await page.getByRole('status').filter({ hasText: 'Rotated.' }).waitFor();
    const after = await provider.tokens.current();
    expect(after).not.toBe(before);
    expect(await page.locator('body').textContent()).not.toContain(after);
    expect((await provider.tokens.list()).tokens.length).toBe(2);
    expect(await provider.tokens.check(before)).toBe(true); // the previous token stays accepted for the overlap
    await page.getByRole('cell', { name: 'previous' }).waitFor();

    // A channel for another location: its secret is write-only (encrypted, shown masked from then on).
    const secret = 'whsec_' + Buffer.from('console-browser-test-signing-secret').toString('base64');
    await page.getByLabel('Location id').fill('locConsoleForm1');
    await page
      .getByLabel(/^Channel config/)
      .fill(JSON.stringify({ kind: 'http', url: 'http://127.0.0.1:9/outbound', signingSecret: secret }));
    await page.getByRole('button', { name: 'Save channel' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    await page.getByRole('link', { name: 'locConsoleForm1' }).waitFor();
    expect(await page.locator('body').textContent()).not.toContain(secret);
    expect((await provider.getChannel('locConsoleForm1'))?.kind).toBe('http');
    await axe('settings');
    await shot('settings');
  });

  it('lists the location and shows its installation and scopes', async () => {
    const { locationId } = sandbox.seed;
    await go('/locations', 'Locations');
    await axe('locations');
    await shot('locations');
    await page.getByRole('link', { name: locationId }).click();
    await page.getByRole('heading', { level: 1, name: `Location ${locationId}` }).waitFor();
    await page.getByRole('heading', { name: 'Installation (location)' }).waitFor();
    const scopes = page.getByRole('table', { name: 'Scopes granted and needed' });
    expect(await scopes.textContent()).toContain('conversations/message.write');
    expect(await scopes.getByText('granted').count()).toBeGreaterThan(0);
    expect(await page.getByText('active', { exact: true }).count()).toBeGreaterThan(0);
    await axe('location');
    await shot('location');
    // The overview again, now that messages, a dead job and its retry have gone through.
    await go('/', /Overview/);
    await page.locator('.uplot').first().waitFor();
    await shot('overview');
  });

  it('shows workflow trigger calls and the opportunity map (read-only)', async () => {
    const { locationId } = sandbox.seed;
    const emu = sandbox.emulator;
    const pipelines = bridge.ctx.services.get('pipelines');
    const { key } = await bridge.ctx.services.get('apiKeys').create({ name: 'browser-crm', locationIds: [locationId] });
    const v1 = (path: string, method: string, json: unknown) =>
      fetch(`${url}/v1/locations/${locationId}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(json),
      });
    // One trigger delivered after a failed attempt, one refused by GHL (404: dead at once, with the reason).
    const ok = emu.opportunities.createHook(locationId, emu.baseUrl);
    emu.opportunities.failHook(ok.triggerId, { status: 500, times: 1 });
    const gone = emu.opportunities.createHook(locationId, emu.baseUrl);
    emu.opportunities.failHook(gone.triggerId, { status: 404, times: Infinity });
    await pipelines.setTrigger(locationId, 'order-paid', ok.url);
    await pipelines.setTrigger(locationId, 'lead-new', gone.url);
    expect((await v1('/triggers/order-paid', 'POST', { orderId: 'A-1' })).status).toBe(202);
    expect((await v1('/triggers/lead-new', 'POST', { lead: 7 })).status).toBe(202);
    emu.opportunities.createPipeline({ locationId, name: 'Sales', stages: ['New', 'Won'] });
    emu.control.createContact({ locationId, email: 'deal@example.com', firstName: 'Dee' });
    const deal = { contact: { email: 'deal@example.com' }, name: 'Big deal', pipeline: 'Sales', stage: 'New' };
    expect((await v1('/opportunities/deal-42', 'PUT', { ...deal, monetaryValue: 1200 })).status).toBe(202);
    await waitFor(
      async () => {
        const r = await pipelines.triggerRequests({ locationId });
        return (
          r.length === 2 && r.every((x) => x.state !== 'pending') && (await pipelines.mapping(locationId, 'deal-42'))
        );
      },
      { what: 'both trigger calls settled and the deal mapped', timeoutMs: 30_000 },
    );

    await go('/pipelines', 'Triggers and deals');
    const calls = page.getByRole('region', { name: /Workflow trigger calls/ });
    const delivered = calls.getByRole('row').filter({ hasText: 'order-paid' });
    await delivered.waitFor();
    expect(await delivered.getByRole('cell').allTextContents()).toEqual(
      expect.arrayContaining(['order-paid', locationId, 'delivered', '2', '200']),
    );
    const dead = calls.getByRole('row').filter({ hasText: 'lead-new' });
    expect(await dead.getByRole('cell').allTextContents()).toEqual(expect.arrayContaining(['dead', '1', '404']));
    expect(await dead.textContent()).toMatch(/refused the trigger: HTTP 404/);
    // The hook URLs are credentials: the screen never shows them.
    expect(await page.content()).not.toContain(ok.triggerId);
    const map = page.getByRole('region', { name: /Opportunity map/ });
    const row = map.getByRole('row').filter({ hasText: 'deal-42' });
    expect(await row.getByRole('cell').allTextContents()).toEqual(
      expect.arrayContaining(['deal-42', 'Sales', 'New', 'open', '1200']),
    );
    // Filtering by state: only the dead call.
    await page.getByLabel('Trigger state').selectOption('dead');
    await calls.getByRole('row').filter({ hasText: 'order-paid' }).waitFor({ state: 'detached' });
    // The filtered list replaces the table (it may be between two renders here): poll for its one row.
    await expect.poll(() => calls.getByRole('row').filter({ hasText: 'lead-new' }).count()).toBe(1);
    await axe('pipelines');
    await shot('pipelines');
  });

  it("shows each location's contact sync on the overview", async () => {
    const { locationId } = sandbox.seed;
    const { key } = await bridge.ctx.services
      .get('apiKeys')
      .create({ name: 'browser-portal', locationIds: [locationId] });
    const records = [
      { externalId: 'portal-1', firstName: 'Ada', email: 'ada@example.com' },
      { externalId: 'portal-2', firstName: 'Bob', email: 'not-an-email' },
    ];
    const r = await fetch(`${url}/v1/locations/${locationId}/contacts/batches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ records }),
    });
    expect(r.status).toBe(202);
    await waitFor(
      async () => {
        const [st] = await bridge.ctx.services.get('contacts').syncStatus(locationId);
        return st?.status && st.pendingRecords === 0 ? st : undefined;
      },
      { what: 'the push batch finished', timeoutMs: 30_000 },
    );

    await go('/', /Overview/);
    const table = page.getByRole('table', { name: 'Contact sync by location' });
    const row = table.getByRole('row').filter({ hasText: locationId });
    await row.waitFor();
    const cells = await row.getByRole('cell').allTextContents();
    // One record created, one refused at intake (its email): the sync is partial, with the reason.
    expect(cells).toEqual(expect.arrayContaining([locationId, 'partial', '1']));
    expect(cells.join(' ')).toMatch(/created 1/);
    expect(cells.join(' ')).toMatch(/failed 1/);
    await axe('overview-contacts');
  });

  it('logs out: the session no longer works', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Admin key').waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === 'ghlb_session');
    expect(cookie).toBeUndefined();
    expect(cspErrors).toEqual([]);
  });
});
