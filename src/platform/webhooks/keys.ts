import { createPublicKey, type KeyObject } from 'node:crypto';

/**
 * GHL's published Ed25519 key for `X-GHL-Signature` (docs/ghl-behaviour.md#webhook-signatures; raw key 8b61d1d6…88e8).
 * Reported by several independent implementations citing the Webhook Integration Guide;
 * re-check against the live guide before go-live. Rotations: add the new key via
 * WEBHOOK_EXTRA_ED25519_KEYS until a release ships it.
 */
export const GHL_ED25519_PUBLIC_KEY_PEM = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=
-----END PUBLIC KEY-----
`;

/** GHL's legacy RSA-4096 key for `X-WH-Signature` (docs/ghl-behaviour.md#webhook-signatures). */
export const GHL_RSA_PUBLIC_KEY_PEM = `-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
`;

/**
 * Splits a config value holding one or more PEM public keys. Separators: blank lines, "|", or
 * nothing at all between END/BEGIN lines; a literal "\n" (env files often cannot hold newlines)
 * is turned into a newline first.
 */
export function splitPemList(value: string | undefined): string[] {
  if (!value) return [];
  const text = value.replace(/\\n/g, '\n');
  const found = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  return found.map((p) => p.trim() + '\n');
}

export type KeyType = 'ed25519' | 'rsa';

/** Parses PEMs into KeyObjects once, checking each is of the expected algorithm. */
export function loadPublicKeys(pems: readonly (string | KeyObject)[], type: KeyType, what: string): KeyObject[] {
  return pems.map((p, i) => {
    let key: KeyObject;
    try {
      key = typeof p === 'string' ? createPublicKey(p) : p;
    } catch (e) {
      throw new Error(`${what}: key #${i + 1} is not a PEM public key (${(e as Error).message})`);
    }
    if (key.asymmetricKeyType !== type)
      throw new Error(`${what}: key #${i + 1} is ${key.asymmetricKeyType ?? 'not asymmetric'}, expected ${type}`);
    return key;
  });
}
