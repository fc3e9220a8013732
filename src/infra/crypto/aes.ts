import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for secrets at rest (OAuth tokens, channel secrets). A ciphertext records the id of
 * the key that made it, so keys can be rotated: the first key of the ring encrypts, every key of
 * the ring decrypts. `aad` binds a ciphertext to its row (e.g. "ghl_installations:<id>:access"),
 * so a value copied into another row does not decrypt.
 *
 * Wire format: "v1.<keyId>.<base64url(iv[12] | tag[16] | ciphertext)>".
 */
export interface KeyRing {
  /** Id of the key new ciphertexts use. */
  primaryId: string;
  keys: ReadonlyMap<string, Buffer>;
}

export class KeyRingError extends Error {
  override name = 'KeyRingError';
}

export class DecryptError extends Error {
  override name = 'DecryptError';
}

/** Parses TOKEN_ENCRYPTION_KEYS ("id:base64[,id:base64…]"); the first key is the primary. */
export function parseKeyRing(spec: string): KeyRing {
  const keys = new Map<string, Buffer>();
  let primaryId: string | undefined;
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const i = part.indexOf(':');
    const id = part.slice(0, i);
    const key = Buffer.from(part.slice(i + 1), 'base64');
    if (i <= 0 || !/^[A-Za-z0-9_-]+$/.test(id)) throw new KeyRingError('key ids are [A-Za-z0-9_-]+ before a ":"');
    if (key.length !== 32) throw new KeyRingError(`key ${id} is not 32 bytes`);
    if (keys.has(id)) throw new KeyRingError(`key id ${id} appears twice`);
    keys.set(id, key);
    primaryId ??= id;
  }
  if (!primaryId) throw new KeyRingError('no keys');
  return { primaryId, keys };
}

export function generateKeySpec(id = 'k1'): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

export function encrypt(ring: KeyRing, plaintext: string, aad: string): string {
  const key = ring.keys.get(ring.primaryId)!;
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return `v1.${ring.primaryId}.${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url')}`;
}

/** Key id a ciphertext was made with (for rotation status), or undefined if malformed. */
export function keyIdOf(ciphertext: string): string | undefined {
  const m = /^v1\.([A-Za-z0-9_-]+)\./.exec(ciphertext);
  return m?.[1];
}

export function decrypt(ring: KeyRing, ciphertext: string, aad: string): string {
  const m = /^v1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(ciphertext);
  if (!m) throw new DecryptError('not a v1 ciphertext');
  const key = ring.keys.get(m[1]!);
  if (!key) throw new DecryptError(`key ${m[1]} is not in TOKEN_ENCRYPTION_KEYS`);
  const raw = Buffer.from(m[2]!, 'base64url');
  if (raw.length < 28) throw new DecryptError('ciphertext too short');
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(raw.subarray(12, 28));
  try {
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  } catch {
    throw new DecryptError('ciphertext does not authenticate (wrong key, row or tampered)');
  }
}

/** Re-encrypts with the primary key when made with another one; returns undefined when already current. */
export function reencrypt(ring: KeyRing, ciphertext: string, aad: string): string | undefined {
  if (keyIdOf(ciphertext) === ring.primaryId) return undefined;
  return encrypt(ring, decrypt(ring, ciphertext, aad), aad);
}

/** "abcd…wxyz" style mask for display: never more than 4 characters of each end. */
export function mask(secret: string | null | undefined): string {
  if (!secret) return '';
  if (secret.length <= 12) return '****';
  return `${secret.slice(0, 4)}…${secret.slice(-4)}`;
}
