import { describe, expect, it } from 'vitest';
import {
  ChannelInputError,
  createChannel,
  LoopbackInbox,
  loopbackInbox,
  type InboundMessage,
  type LoopbackInboundContext,
  type LoopbackRecord,
  type OutboundMessage,
} from '../../src/capabilities/channels/index.js';

const msg = (over: Partial<OutboundMessage> = {}): OutboundMessage => ({
  messageId: 'ghl-1',
  locationId: 'loc1',
  contactId: 'c1',
  channel: 'SMS',
  phone: '+15551234567',
  message: 'hello',
  attachments: [],
  ...over,
});

function nextInbound(): {
  handler: (m: InboundMessage, ctx: LoopbackInboundContext) => void;
  got: Promise<[InboundMessage, LoopbackInboundContext]>;
} {
  let resolve!: (v: [InboundMessage, LoopbackInboundContext]) => void;
  const got = new Promise<[InboundMessage, LoopbackInboundContext]>((r) => (resolve = r));
  return { handler: (m, ctx) => resolve([m, ctx]), got };
}

describe('loopback channel', () => {
  it('delivers into the inbox (emits "message") and reports delivered', async () => {
    const inbox = new LoopbackInbox();
    const seen: LoopbackRecord[] = [];
    inbox.on('message', (r) => seen.push(r));
    const ch = createChannel({ kind: 'loopback' }, { loopbackInbox: inbox });
    expect(await ch.send(msg())).toEqual({ outcome: 'delivered', channelMessageId: 'loopback-ghl-1' });
    expect(seen).toHaveLength(1);
    expect(inbox.list('loc1').map((r) => r.message.message)).toEqual(['hello']);
    expect(inbox.list('other')).toEqual([]);
  });

  it('uses the process-wide loopbackInbox by default', async () => {
    const ch = createChannel({ kind: 'loopback' });
    await ch.send(msg({ messageId: 'ghl-default-inbox' }));
    expect(loopbackInbox.get('loopback-ghl-default-inbox')?.message.messageId).toBe('ghl-default-inbox');
  });

  it('autoReply: true → Auto-reply: got "<text>" to onLoopbackInbound, after send() resolved', async () => {
    const { handler, got } = nextInbound();
    let sendResolved = false;
    const ch = createChannel(
      { kind: 'loopback', autoReply: true },
      {
        loopbackInbox: new LoopbackInbox(),
        onLoopbackInbound: (m, c) => (expect(sendResolved).toBe(true), handler(m, c)),
      },
    );
    await ch.send(msg());
    sendResolved = true;
    const [reply, ctx] = await got;
    expect(reply).toMatchObject({
      from: '+15551234567',
      text: 'Auto-reply: got "hello"',
      channel: 'SMS',
      contactId: 'c1',
      attachments: [],
    });
    expect(reply.channelMessageId).toMatch(/^loopback-reply-/);
    expect(ctx).toEqual({ locationId: 'loc1', contactId: 'c1', inReplyTo: 'ghl-1' });
  });

  it('autoReply string → that text; Email replies go from the recipient with Re: subject', async () => {
    const { handler, got } = nextInbound();
    const ch = createChannel(
      { kind: 'loopback', autoReply: 'Thanks!' },
      { loopbackInbox: new LoopbackInbox(), onLoopbackInbound: handler },
    );
    await ch.send(
      msg({
        channel: 'Email',
        phone: undefined,
        message: undefined,
        subject: 'Quote',
        html: '<p>x</p>',
        emailTo: ['a@b.c'],
      }),
    );
    const [reply] = await got;
    expect(reply).toMatchObject({ from: 'a@b.c', text: 'Thanks!', subject: 'Re: Quote', channel: 'Email' });
  });

  it('a retried send does not duplicate the inbox entry or the auto-reply', async () => {
    const inbox = new LoopbackInbox();
    const replies: InboundMessage[] = [];
    const { handler, got } = nextInbound();
    const ch = createChannel(
      { kind: 'loopback', autoReply: true },
      { loopbackInbox: inbox, onLoopbackInbound: (m, c) => (replies.push(m), handler(m, c)) },
    );
    await ch.send(msg());
    await ch.send(msg());
    await got;
    // A second reply would be scheduled on the same setImmediate turn; wait one more turn to be sure it was not.
    await new Promise((r) => setImmediate(r));
    expect(replies).toHaveLength(1);
    expect(inbox.list()).toHaveLength(1);
  });

  it('receipt pending → accepted; first pollStatus delivers (emits "status")', async () => {
    const inbox = new LoopbackInbox();
    const statuses: string[] = [];
    inbox.on('status', (r) => statuses.push(r.status));
    const ch = createChannel({ kind: 'loopback', receipt: 'pending' }, { loopbackInbox: inbox });
    expect(await ch.send(msg())).toEqual({ outcome: 'accepted', channelMessageId: 'loopback-ghl-1' });
    expect(await ch.pollStatus?.('loopback-ghl-1')).toEqual({
      channelMessageId: 'loopback-ghl-1',
      status: 'delivered',
    });
    expect(statuses).toEqual(['delivered']);
    expect(await ch.pollStatus?.('nope')).toBeNull();
  });

  it('receipt failed → failed with error', async () => {
    const ch = createChannel({ kind: 'loopback', receipt: 'failed' }, { loopbackInbox: new LoopbackInbox() });
    expect(await ch.send(msg())).toMatchObject({
      outcome: 'failed',
      error: { code: 'LOOPBACK_FAILED', type: 'provider' },
    });
  });

  it('handler errors are contained (logged), not thrown into the process', async () => {
    const errors: unknown[] = [];
    let resolve!: () => void;
    const logged = new Promise<void>((r) => (resolve = r));
    const logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (o: object) => (errors.push(o), resolve()),
    };
    const ch = createChannel(
      { kind: 'loopback', autoReply: true },
      { loopbackInbox: new LoopbackInbox(), logger, onLoopbackInbound: () => Promise.reject(new Error('boom')) },
    );
    await ch.send(msg());
    await logged;
    expect(errors).toHaveLength(1);
  });

  it('has no inbound endpoint', () => {
    const ch = createChannel({ kind: 'loopback' });
    const req = { headers: {}, rawBody: Buffer.from('{}') };
    expect(ch.verifyInbound(req).ok).toBe(false);
    expect(() => ch.parseInbound(req)).toThrow(ChannelInputError);
  });

  it('inbox is bounded (FIFO)', () => {
    const inbox = new LoopbackInbox(2);
    for (const id of ['a', 'b', 'c']) inbox.add({ channelMessageId: id, message: msg(), status: 'delivered', at: '' });
    expect(inbox.list().map((r) => r.channelMessageId)).toEqual(['b', 'c']);
  });
});
