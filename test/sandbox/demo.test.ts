import { afterEach, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/app.js';
import { createLogger } from '../../src/infra/log/logger.js';
import { bridgeModules } from '../../src/modules.js';
import { sandboxModule, startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { freePort } from '../helpers/net.js';
import { dropSchema, STORE, testConfig, waitFor } from '../helpers/store.js';

let bridge: Bridge | undefined;
let sandbox: Sandbox | undefined;
afterEach(async () => {
  await bridge?.close();
  await sandbox?.close();
  if (bridge?.ctx.config.DATABASE_URL) await dropSchema(bridge.ctx.config.DATABASE_SCHEMA);
  bridge = sandbox = undefined;
});

describe(`sandbox demo on ${STORE}`, () => {
  it('relays an SMS sent by a GHL user through loopback, marks it delivered, and posts the auto-reply back', async () => {
    const log = createLogger({ level: 'silent' });
    // The OAuth redirect URI is built from PUBLIC_URL, so the bridge needs a known port up front.
    const port = await freePort();
    sandbox = await startSandbox(testConfig({ PORT: String(port), EMULATOR_PORT: '0', DATA_DIR: 'memory://' }), log);
    const modules = await bridgeModules(sandbox.config, { webhookKeys: sandbox.webhookKeys });
    modules.push(sandboxModule(sandbox));
    bridge = await createBridge(sandbox.config, { log, modules, dataDir: 'memory://' });
    const url = await bridge.listen(port);
    const notes = await sandbox.afterListen(url, bridge.ctx.services);
    expect(notes.join('\n')).toContain('channel: loopback with auto-reply');

    const { locationId, contactId } = sandbox.seed;
    const sent = sandbox.emulator.control.sendMessageAsUser({
      locationId,
      contactId,
      type: 'SMS',
      message: 'Hello from GHL',
    });
    const delivered = await waitFor(
      () => {
        const m = sandbox!.emulator.control.getMessage(sent.id);
        return m?.status === 'delivered' ? m : null;
      },
      { what: 'outbound SMS delivered' },
    );
    expect(delivered.statusHistory.map((h) => h.status)).toEqual(['pending', 'delivered']);
    // As in production: the Delivery-URL call was unsigned, with the token in the URL, and confirmed by the event.
    const d = sandbox.emulator.control.listDeliveries({ eventType: 'ProviderOutboundMessage' })[0]!;
    expect(d.headers['x-ghl-signature']).toBeUndefined();
    expect(d.url).toMatch(/\/webhooks\/ghl\/provider\/[A-Za-z0-9_-]{43}$/);
    const row = await bridge.ctx.db
      .selectFrom('provider_outbound')
      .select('confirmed_by')
      .where('message_id', '=', sent.id)
      .executeTakeFirstOrThrow();
    expect(row.confirmed_by).toBe('event');
    const reply = await waitFor(
      () =>
        sandbox!.emulator.control
          .listMessages({ locationId })
          .find((m) => m.direction === 'inbound' && m.conversationId === sent.conversationId),
      { what: 'auto-reply in the same conversation' },
    );
    expect(reply.body).toBe('Auto-reply: got "Hello from GHL"');
    expect(reply.contactId).toBe(contactId);
  });
});
