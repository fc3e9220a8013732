import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GHL_ED25519_PUBLIC_KEY_PEM,
  GHL_RSA_PUBLIC_KEY_PEM,
  loadPublicKeys,
  splitPemList,
} from '../../src/platform/webhooks/keys.js';
import { WebhookVerifier } from '../../src/platform/webhooks/verify.js';
import { makeSigner } from './helpers.js';

const s = makeSigner();
const other = makeSigner();
const verifier = (acceptRsa = true) =>
  new WebhookVerifier({
    ed25519Keys: loadPublicKeys([GHL_ED25519_PUBLIC_KEY_PEM, s.edPublicPem], 'ed25519', 'ed'),
    rsaKeys: loadPublicKeys([GHL_RSA_PUBLIC_KEY_PEM, s.rsaPublicPem], 'rsa', 'rsa'),
    acceptRsa,
  });
const body = JSON.stringify({ type: 'ContactCreate', locationId: 'l', webhookId: 'w1' });
const raw = Buffer.from(body);

describe('WebhookVerifier', () => {
  it("builds in GHL's published keys (docs/ghl-behaviour.md#webhook-signatures)", () => {
    const ed = createPublicKey(GHL_ED25519_PUBLIC_KEY_PEM);
    expect(ed.asymmetricKeyType).toBe('ed25519');
    // Raw key from docs/ghl-behaviour.md#webhook-signatures.
    expect(ed.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex')).toBe(
      '8b61d1d6cacbe28d7c3bc0516bb815258ec6edbba96cddc7f40c09ac708388e8',
    );
    const rsa = createPublicKey(GHL_RSA_PUBLIC_KEY_PEM);
    expect(rsa.asymmetricKeyType).toBe('rsa');
    expect(rsa.asymmetricKeyDetails?.modulusLength).toBe(4096);
  });

  it('accepts a valid Ed25519 signature over the raw bytes', () => {
    expect(verifier().verify(raw, { 'x-ghl-signature': s.ed(raw) })).toMatchObject({
      ok: true,
      scheme: 'ed25519',
      bytes: 'raw',
    });
  });

  it('rejects a signature by another key, a tampered byte, and a truncated signature', () => {
    expect(verifier().verify(raw, { 'x-ghl-signature': other.ed(raw) })).toMatchObject({
      ok: false,
      reason: 'invalid_signature',
    });
    const tampered = Buffer.from(raw);
    tampered[10] = tampered[10]! ^ 1;
    expect(verifier().verify(tampered, { 'x-ghl-signature': s.ed(raw) })).toMatchObject({
      ok: false,
      reason: 'invalid_signature',
    });
    expect(verifier().verify(raw, { 'x-ghl-signature': s.ed(raw).slice(0, 40) })).toMatchObject({
      ok: false,
      reason: 'invalid_signature',
    });
    expect(verifier().verify(raw, { 'x-ghl-signature': 'not base64 !!' })).toMatchObject({
      ok: false,
      reason: 'invalid_signature',
    });
  });

  it('treats a missing header, an empty one and "N/A" as unsigned', () => {
    expect(verifier().verify(raw, {})).toMatchObject({ ok: false, reason: 'missing_signature' });
    expect(verifier().verify(raw, { 'x-ghl-signature': 'N/A' })).toMatchObject({
      ok: false,
      reason: 'missing_signature',
    });
    expect(verifier().verify(raw, { 'x-ghl-signature': ' ', 'x-wh-signature': 'n/a' })).toMatchObject({
      ok: false,
      reason: 'missing_signature',
    });
  });

  it('does not accept a signature in the wrong header', () => {
    expect(verifier().verify(raw, { 'x-wh-signature': s.ed(raw) })).toMatchObject({
      ok: false,
      reason: 'invalid_signature',
    });
    expect(verifier().verify(raw, { 'x-ghl-signature': s.rsa(raw) })).toMatchObject({
      ok: false,
      reason: 'invalid_signature',
    });
  });

  it('lets a present X-GHL-Signature decide alone (no fallback to a valid RSA header)', () => {
    expect(verifier().verify(raw, { 'x-ghl-signature': other.ed(raw), 'x-wh-signature': s.rsa(raw) })).toMatchObject({
      ok: false,
    });
  });

  it('accepts legacy RSA only while enabled', () => {
    expect(verifier(true).verify(raw, { 'x-wh-signature': s.rsa(raw) })).toMatchObject({ ok: true, scheme: 'rsa' });
    expect(verifier(false).verify(raw, { 'x-wh-signature': s.rsa(raw) })).toMatchObject({
      ok: false,
      reason: 'legacy_disabled',
    });
    // Both headers (what GHL sends today): Ed25519 decides, so turning RSA off changes nothing.
    expect(verifier(false).verify(raw, { 'x-wh-signature': s.rsa(raw), 'x-ghl-signature': s.ed(raw) })).toMatchObject({
      ok: true,
      scheme: 'ed25519',
    });
  });

  it('falls back to JSON.stringify(JSON.parse(raw)) when the raw bytes do not match (docs/ghl-behaviour.md#signed-bytes)', () => {
    const obj = { type: 'ContactCreate', name: 'Zoë', n: 1.5, nested: { a: [1, 2] } };
    const compact = JSON.stringify(obj);
    const pretty = Buffer.from(JSON.stringify(obj, null, 2));
    for (const [hdr, sig, scheme] of [
      ['x-ghl-signature', s.ed(compact), 'ed25519'],
      ['x-wh-signature', s.rsa(compact), 'rsa'],
    ] as const) {
      const r = verifier().verify(pretty, { [hdr]: sig });
      expect(r).toMatchObject({ ok: true, scheme, bytes: 'reserialized' });
      expect(r.parsed).toEqual(obj);
    }
    // The fallback re-serialises the same content only: a changed value still fails.
    const changed = Buffer.from(JSON.stringify({ ...obj, n: 2 }, null, 2));
    expect(verifier().verify(changed, { 'x-ghl-signature': s.ed(compact) })).toMatchObject({ ok: false });
  });

  it('splits key lists from config (blank lines, "|", escaped newlines)', () => {
    const two = `${s.edPublicPem}\n${other.edPublicPem}`;
    expect(splitPemList(two)).toHaveLength(2);
    expect(splitPemList(`${s.edPublicPem.trim()}|${other.edPublicPem.trim()}`)).toHaveLength(2);
    expect(splitPemList(s.edPublicPem.replace(/\n/g, '\\n'))).toHaveLength(1);
    expect(
      loadPublicKeys(splitPemList(s.edPublicPem.replace(/\n/g, '\\n')), 'ed25519', 'x')[0]!.asymmetricKeyType,
    ).toBe('ed25519');
    expect(() => loadPublicKeys([s.rsaPublicPem], 'ed25519', 'WEBHOOK_EXTRA_ED25519_KEYS')).toThrow(/expected ed25519/);
  });
});
