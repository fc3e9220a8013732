import { createSign, generateKeyPairSync, randomUUID, sign as edSign, type KeyObject } from 'node:crypto';
import type { Db } from '../../src/infra/db/index.js';
import '../../src/platform/webhooks/tables.js';

/** A GHL-like signer with its own key pairs (GHL's private keys are not public). */
export interface TestSigner {
  edPrivate: KeyObject;
  edPublicPem: string;
  rsaPrivate: KeyObject;
  rsaPublicPem: string;
  ed(body: string | Buffer): string;
  rsa(body: string | Buffer): string;
}

export function makeSigner(): TestSigner {
  const ed = generateKeyPairSync('ed25519');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
  return {
    edPrivate: ed.privateKey,
    edPublicPem: pem(ed.publicKey),
    rsaPrivate: rsa.privateKey,
    rsaPublicPem: pem(rsa.publicKey),
    ed: (body) => edSign(null, Buffer.from(body), ed.privateKey).toString('base64'),
    rsa: (body) => createSign('SHA256').update(Buffer.from(body)).sign(rsa.privateKey, 'base64'),
  };
}

export function contactCreate(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'ContactCreate',
    locationId: 'loc_1',
    id: `c_${randomUUID().slice(0, 8)}`,
    firstName: 'Ada',
    phone: '+15550100',
    tags: ['a'],
    timestamp: new Date().toISOString(),
    webhookId: randomUUID(),
    ...over,
  };
}

export interface PostResult {
  status: number;
  body: string;
}

export async function post(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<PostResult> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, body: await res.text() };
}

/** Posts `payload` as compact JSON signed with Ed25519 (the way GHL and the emulator sign). */
export function sendSigned(
  url: string,
  s: TestSigner,
  payload: unknown,
  scheme: 'ed' | 'rsa' = 'ed',
): Promise<PostResult> {
  const body = JSON.stringify(payload);
  return post(url, body, scheme === 'ed' ? { 'x-ghl-signature': s.ed(body) } : { 'x-wh-signature': s.rsa(body) });
}

export async function events(db: Db) {
  return db.selectFrom('webhook_events').selectAll().orderBy('id').execute();
}

export async function countEvents(db: Db): Promise<number> {
  const r = await db.selectFrom('webhook_events').select(db.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}
