import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const genKeyPair = promisify(generateKeyPair);

export interface SigningKeys {
  ed25519Private: KeyObject;
  rsaPrivate: KeyObject;
  ed25519PublicKeyPem: string;
  rsaPublicKeyPem: string;
}

export interface KeyMaterial {
  /** PKCS#8 PEM of an Ed25519 private key to reuse across runs. */
  ed25519PrivateKeyPem?: string;
  /** PKCS#8 PEM of an RSA private key to reuse across runs. */
  rsaPrivateKeyPem?: string;
}

const pubPem = (k: KeyObject) => createPublicKey(k).export({ type: 'spki', format: 'pem' }).toString();

/**
 * The emulator signs with its own key pairs (GHL's private keys are not public). RSA is 2048-bit by default
 * (GHL's is 4096) purely to keep start-up fast; the algorithm (PKCS#1 v1.5 + SHA-256) is the same.
 */
export async function loadOrGenerateKeys(material: KeyMaterial = {}, rsaBits = 2048): Promise<SigningKeys> {
  const ed = material.ed25519PrivateKeyPem
    ? createPrivateKey(material.ed25519PrivateKeyPem)
    : (await genKeyPair('ed25519')).privateKey;
  const rsa = material.rsaPrivateKeyPem
    ? createPrivateKey(material.rsaPrivateKeyPem)
    : (await genKeyPair('rsa', { modulusLength: rsaBits, publicExponent: 0x10001 })).privateKey;
  return { ed25519Private: ed, rsaPrivate: rsa, ed25519PublicKeyPem: pubPem(ed), rsaPublicKeyPem: pubPem(rsa) };
}
