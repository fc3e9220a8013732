import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  authenticate,
  classifyDelivery,
  URL_TOKEN_SIGNATURE,
  type DeliveryInput,
} from '../../src/platform/webhooks/classify.js';
import type { VerifyResult } from '../../src/platform/webhooks/verify.js';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const signed: VerifyResult = { ok: true, scheme: 'ed25519', bytes: 'raw' };
const unsigned: VerifyResult = { ok: false, reason: 'missing_signature' };
const badSig: VerifyResult = { ok: false, reason: 'invalid_signature' };
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function input(body: unknown, over: Partial<DeliveryInput> = {}): DeliveryInput {
  return {
    source: 'app',
    raw: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    verification: signed,
    insecureSkipVerify: false,
    toleranceSec: 300,
    nowMs: NOW,
    hasHandler: (t) => t === 'ContactCreate' || t === 'ProviderOutboundMessage',
    orderingKey: (e) => `loc:${e.locationId}`,
    ...over,
  };
}
const contact = { type: 'ContactCreate', locationId: 'L1', webhookId: 'wh-1', timestamp: '2026-05-01T11:59:00Z' };

describe('authenticate: which check admits a delivery', () => {
  it('a valid signature decides alone; re-serialized bytes are labelled', () => {
    expect(authenticate({ verification: signed, insecureSkipVerify: false })).toEqual({ signature: 'ed25519' });
    expect(
      authenticate({ verification: { ok: true, scheme: 'rsa', bytes: 'reserialized' }, insecureSkipVerify: false }),
    ).toEqual({ signature: 'rsa+reserialized' });
    // Even with a URL token that did not verify.
    expect(authenticate({ verification: signed, urlToken: { valid: false }, insecureSkipVerify: false })).toEqual({
      signature: 'ed25519',
    });
  });

  it('no valid signature: a valid URL token admits it unconfirmed; a wrong token or none is refused (401)', () => {
    expect(authenticate({ verification: unsigned, urlToken: { valid: true }, insecureSkipVerify: false })).toEqual({
      signature: URL_TOKEN_SIGNATURE,
    });
    expect(
      authenticate({ verification: unsigned, urlToken: { valid: false }, insecureSkipVerify: false }),
    ).toMatchObject({ action: 'reject', status: 401, reason: 'invalid_token' });
    // A present but bad signature on the token route keeps its own reason.
    expect(authenticate({ verification: badSig, urlToken: { valid: false }, insecureSkipVerify: false })).toMatchObject(
      {
        action: 'reject',
        status: 401,
        reason: 'invalid_signature',
      },
    );
    expect(authenticate({ verification: unsigned, insecureSkipVerify: false })).toMatchObject({
      action: 'reject',
      status: 401,
      reason: 'missing_signature',
      message: 'signature missing or invalid',
    });
    expect(
      authenticate({ verification: { ok: false, reason: 'legacy_disabled' }, insecureSkipVerify: false }),
    ).toMatchObject({
      action: 'reject',
      reason: 'legacy_disabled',
      message: expect.stringContaining('X-GHL-Signature'),
    });
  });

  it('insecure mode admits an unverified delivery, saying why it did not verify', () => {
    expect(authenticate({ verification: badSig, insecureSkipVerify: true })).toEqual({
      signature: 'none',
      unverified: 'invalid_signature',
    });
    expect(authenticate({ verification: unsigned, urlToken: { valid: false }, insecureSkipVerify: true })).toEqual({
      signature: 'none',
      unverified: 'missing_signature',
    });
  });
});

describe('classifyDelivery: the decision and the record to store', () => {
  it('accepts a signed event with a handler: received, deduped on webhookId, scoped and ordered', () => {
    const d = classifyDelivery(input(contact));
    expect(d).toMatchObject({
      action: 'accept',
      record: {
        source: 'app',
        dedupeKey: 'wh-1',
        type: 'ContactCreate',
        locationId: 'L1',
        webhookId: 'wh-1',
        orderingKey: 'loc:L1',
        eventAt: new Date('2026-05-01T11:59:00Z'),
        signature: 'ed25519',
        status: 'received',
        reason: null,
        raw: null,
        payloadJson: JSON.stringify(contact),
      },
    });
    expect(d).not.toHaveProperty('unverified');
  });

  it('confirm: a provider delivery admitted by its URL token; deduped on messageId; type is the provider outbound', () => {
    const body = { messageId: 'm-1', locationId: 'L1', webhookId: 'wh-9', message: 'hi' };
    const d = classifyDelivery(input(body, { source: 'provider', verification: unsigned, urlToken: { valid: true } }));
    expect(d).toMatchObject({
      action: 'confirm',
      record: { type: 'ProviderOutboundMessage', dedupeKey: 'm-1', signature: URL_TOKEN_SIGNATURE, status: 'received' },
    });
  });

  it('rejects before storing: a refused signature, an unparseable timestamp (400), one outside the window (401)', () => {
    expect(classifyDelivery(input(contact, { verification: badSig }))).toMatchObject({
      action: 'reject',
      status: 401,
      reason: 'invalid_signature',
    });
    expect(classifyDelivery(input({ ...contact, timestamp: 'yesterday' }))).toMatchObject({
      action: 'reject',
      status: 400,
      reason: 'bad_timestamp',
    });
    expect(classifyDelivery(input({ ...contact, timestamp: { at: 1 } }))).toMatchObject({ reason: 'bad_timestamp' });
    expect(classifyDelivery(input({ ...contact, timestamp: '2026-05-01T11:54:59Z' }))).toMatchObject({
      action: 'reject',
      status: 401,
      reason: 'stale',
      message: 'timestamp is outside the 300 s window',
    });
    // Exactly at the edge of the window, and in the future within it, is fine; no timestamp at all is fine.
    expect(classifyDelivery(input({ ...contact, timestamp: '2026-05-01T11:55:00Z' })).action).toBe('accept');
    expect(classifyDelivery(input({ ...contact, timestamp: NOW + 299_000 })).action).toBe('accept');
    const { timestamp: _t, ...undated } = contact;
    expect(classifyDelivery(input(undated))).toMatchObject({ action: 'accept', record: { eventAt: null } });
  });

  it('signed but unusable bodies are kept as dead with the raw bytes and the reason', () => {
    const bad = classifyDelivery(input('{"type":'));
    expect(bad).toMatchObject({
      action: 'accept',
      record: { status: 'dead', type: null, payloadJson: null, dedupeKey: `sha256:${sha('{"type":')}` },
    });
    if (bad.action === 'reject') throw new Error('unreachable');
    expect(bad.record.raw?.toString()).toBe('{"type":');
    expect(bad.record.reason).toMatch(/^malformed JSON: /);
    for (const body of ['[1,2]', 'null', '"text"'])
      expect(classifyDelivery(input(body))).toMatchObject({
        record: { status: 'dead', reason: 'body is JSON but not an object' },
      });
    // The verifier's own parse result is reused (no second parse).
    expect(
      classifyDelivery(
        input('ignored', { verification: { ...signed, parsed: { type: 'ContactCreate', webhookId: 'w' } } }),
      ),
    ).toMatchObject({ record: { status: 'received', dedupeKey: 'w' } });
    expect(
      classifyDelivery(input('{}', { verification: { ...signed, parseError: 'nested deeper than 64 levels' } })),
    ).toMatchObject({ record: { status: 'dead', reason: 'malformed JSON: nested deeper than 64 levels' } });
  });

  it('status by type: skipped (known, no handler), unknown_type (unknown, or no type), with no ordering key', () => {
    expect(classifyDelivery(input({ type: 'ContactDelete', locationId: 'L1' }))).toMatchObject({
      record: { status: 'skipped', reason: 'no handler registered', orderingKey: null },
    });
    expect(classifyDelivery(input({ type: 'SomethingNew', locationId: 'L1' }))).toMatchObject({
      record: { status: 'unknown_type', reason: null, type: 'SomethingNew', orderingKey: null },
    });
    expect(classifyDelivery(input({ locationId: 'L1' }))).toMatchObject({
      record: { status: 'unknown_type', reason: 'payload has no type', type: null },
    });
  });

  it('dedupe key without ids: a hash of the bytes that were signed (the re-serialized JSON when only it matched)', () => {
    const body = { type: 'ContactCreate', locationId: 'L1' };
    const spaced = '{ "type": "ContactCreate", "locationId": "L1" }';
    expect(classifyDelivery(input(spaced))).toMatchObject({ record: { dedupeKey: `sha256:${sha(spaced)}` } });
    expect(
      classifyDelivery(input(spaced, { verification: { ok: true, scheme: 'ed25519', bytes: 'reserialized' } })),
    ).toMatchObject({
      record: { dedupeKey: `sha256:${sha(JSON.stringify(body))}`, signature: 'ed25519+reserialized' },
    });
    // App deliveries ignore messageId; provider deliveries prefer it over webhookId.
    expect(classifyDelivery(input({ ...body, messageId: 'm', webhookId: 'w' }))).toMatchObject({
      record: { dedupeKey: 'w' },
    });
  });

  it('insecure mode: accepted with signature none and the verification failure reported', () => {
    expect(classifyDelivery(input(contact, { verification: badSig, insecureSkipVerify: true }))).toMatchObject({
      action: 'accept',
      unverified: 'invalid_signature',
      record: { signature: 'none', status: 'received' },
    });
  });
});
