import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Webhook } from 'standardwebhooks';
import type { ServiceRegistry } from '../app.js';
import type { Config } from '../infra/config/index.js';
import type { DemoSeed, Emulator } from '../emulator/index.js';
import type { Logger } from '../infra/log/logger.js';
import '../platform/apikeys/index.js';

/**
 * The sandbox's chat round trip (issue 13): a second demo sub-account whose HTTP channel points at a local demo
 * receiver (standing in for the chat product), an API key for the chat API kept in the data dir, and the commands
 * that push a chat message and reply to it as a GHL user.
 */
export interface ChatDemo {
  lines: string[];
  close(): Promise<void>;
}

const CLIENT_PHONE = '+14155550199';

export async function startChatDemo(o: {
  emulator: Emulator;
  seed: DemoSeed;
  emuUrl: string;
  bridgeUrl: string;
  services: ServiceRegistry;
  config: Config;
  log: Logger;
  install: (locationId: string) => Promise<void>;
}): Promise<ChatDemo | undefined> {
  const provider = o.services.find('provider');
  const keys = o.services.find('apiKeys');
  if (!provider || !keys || !o.services.find('chat')) return undefined;
  const c = o.emulator.control;
  const loc =
    c.listLocations({ companyId: o.seed.companyId }).find((l) => l.name === 'Chat Demo') ??
    c.createLocation({ companyId: o.seed.companyId, name: 'Chat Demo', email: 'chat-demo@example.com' });
  await o.install(loc.id);
  // The chat product's client already exists in GHL by phone: the bridge finds it (duplicate search) and links it.
  const contact =
    c.listContacts({ locationId: loc.id }).find((x) => x.phone === CLIENT_PHONE) ??
    c.createContact({ locationId: loc.id, firstName: 'Dana', lastName: 'Demo', phone: CLIENT_PHONE });

  // The demo receiver: verifies the Standard Webhooks signature and prints each reply with its chat ids.
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const wh = new Webhook(secret);
  const received: unknown[] = [];
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(received, null, 2));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      try {
        const body = wh.verify(Buffer.concat(chunks).toString('utf8'), req.headers as Record<string, string>) as {
          message?: string;
          chat?: { conversationId: string; clientId: string };
        };
        received.push(body);
        o.log.info(
          { chat: body.chat, text: body.message },
          'sandbox chat receiver: a GHL user reply arrived for the chat product',
        );
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"delivered"}');
      } catch {
        res.writeHead(401).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  await provider.configureChannel(loc.id, { kind: 'http', url: `${receiverUrl}/chat`, signingSecret: secret });
  const { key } = await keys.create({ name: 'sandbox chat demo', locationIds: [loc.id] });
  let keyRef = key;
  if (!o.config.DATA_DIR.startsWith('memory://')) {
    const file = join(resolve(o.config.DATA_DIR), 'sandbox-chat-key');
    writeFileSync(file, key + '\n', { mode: 0o600 });
    keyRef = `$(cat ${file})`;
  }
  const body = JSON.stringify({
    conversationId: 'demo-chat-1',
    client: { externalId: 'demo-client-1', name: 'Dana Demo', phone: CLIENT_PHONE },
    message: {
      externalId: `demo-msg-${Date.now()}`,
      direction: 'inbound',
      text: 'Hi, this is the chat product',
      sentAt: new Date().toISOString(),
    },
  });
  const reply = JSON.stringify({
    locationId: loc.id,
    contactId: contact.id,
    type: 'SMS',
    message: 'Hello from a GHL user',
    conversationProviderId: o.seed.conversationProviderId,
  });
  return {
    lines: [
      '',
      `  Chat round trip (two-way chat sync) on sub-account ${loc.id}; the chat product's receiver: ${receiverUrl}`,
      '  1. Push a chat message as the chat product (answers 202; it appears in the GHL conversation):',
      `    curl -s -X POST ${o.bridgeUrl}/v1/locations/${loc.id}/chat/messages -H "authorization: Bearer ${keyRef}" -H 'content-type: application/json' -d '${body}'`,
      `    curl -s '${o.emuUrl}/_emulator/messages?locationId=${loc.id}'`,
      '  2. Reply as a GHL user; the reply reaches the receiver with the chat ids (printed in the log, listed at GET):',
      `    curl -s -X POST ${o.emuUrl}/_emulator/send-message -H 'content-type: application/json' -d '${reply}'`,
      `    curl -s ${receiverUrl}/`,
    ],
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
