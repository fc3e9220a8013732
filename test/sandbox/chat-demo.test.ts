import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/app.js';
import { createLogger } from '../../src/infra/log/logger.js';
import { bridgeModules } from '../../src/modules.js';
import { sandboxModule, startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { freePort } from '../helpers/net.js';
import { dropSchema, STORE, testConfig, waitFor } from '../helpers/store.js';

const sh = promisify(execFile);

let bridge: Bridge | undefined;
let sandbox: Sandbox | undefined;
afterEach(async () => {
  await bridge?.close();
  await sandbox?.close();
  if (bridge?.ctx.config.DATABASE_URL) await dropSchema(bridge.ctx.config.DATABASE_SCHEMA);
  bridge = sandbox = undefined;
});

describe(`sandbox chat round trip on ${STORE}`, () => {
  it('the printed commands push a chat message into GHL, and a GHL user reply reaches the demo receiver', async () => {
    const log = createLogger({ level: 'silent' });
    const port = await freePort();
    sandbox = await startSandbox(testConfig({ PORT: String(port), EMULATOR_PORT: '0', DATA_DIR: 'memory://' }), log);
    const modules = await bridgeModules(sandbox.config, { webhookKeys: sandbox.webhookKeys });
    modules.push(sandboxModule(sandbox));
    bridge = await createBridge(sandbox.config, { log, modules, dataDir: 'memory://' });
    const url = await bridge.listen(port);
    const notes = await sandbox.afterListen(url, bridge.ctx.services);
    const cmds = notes.map((l) => l.trim()).filter((l) => l.startsWith('curl '));
    const push = cmds.find((l) => l.includes('/chat/messages'))!;
    const reply = cmds.find((l) => l.includes('/_emulator/send-message') && l.includes('Hello from a GHL user'))!;
    const list = cmds.at(-1)!;
    expect(push).toBeDefined();
    const out = await sh('sh', ['-c', push]);
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: true, accepted: 1 });
    const emu = sandbox.emulator.control;
    const inGhl = await waitFor(() => emu.listMessages().find((m) => m.body === 'Hi, this is the chat product'), {
      what: 'chat message in GHL',
    });
    expect(inGhl.direction).toBe('inbound');
    await sh('sh', ['-c', reply]);
    const got = await waitFor(
      async () => {
        const r = JSON.parse((await sh('sh', ['-c', list])).stdout) as Array<{ chat?: { clientId: string } }>;
        return r.length ? r : null;
      },
      { what: 'reply at the demo receiver', timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(got[0]).toMatchObject({
      message: 'Hello from a GHL user',
      chat: { conversationId: 'demo-chat-1', clientId: 'demo-client-1' },
    });
    // The phone matched the existing contact (duplicate search): no second contact.
    expect(emu.listContacts({ locationId: inGhl.locationId })).toHaveLength(1);
  });
});
