import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type SignatureScheme = 'ed25519' | 'rsa';
/** Which bytes matched: the request as received, or JSON.stringify(JSON.parse(raw)) (docs/ghl-behaviour.md#signed-bytes). */
export type SignedBytes = 'raw' | 'reserialized';

export type RejectReason = 'missing_signature' | 'invalid_signature' | 'legacy_disabled';

export type VerifyResult =
  | { ok: true; scheme: SignatureScheme; bytes: SignedBytes; parsed?: unknown; parseError?: string }
  | { ok: false; reason: RejectReason; parsed?: unknown; parseError?: string };

export interface VerifierOptions {
  ed25519Keys: readonly KeyObject[];
  rsaKeys: readonly KeyObject[];
  /** Accept X-WH-Signature (legacy RSA); GHL is retiring it. */
  acceptRsa: boolean;
}

// base64 of a 64-byte Ed25519 signature is 88 chars; RSA-4096 is 684. Anything far longer is junk.
const MAX_SIG_CHARS = 2048;

/**
 * Deepest nesting a webhook body may have. GHL's payloads nest a handful of levels; a body nested deeper than this is
 * refused before anything parses or re-serialises it (JSON.parse accepts nesting that JSON.stringify then overflows
 * the stack on).
 */
export const MAX_JSON_DEPTH = 64;

/** True when the JSON text nests objects/arrays deeper than `max` (one pass over the bytes; strings are skipped). */
export function jsonTooDeep(raw: Buffer, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** JSON.parse of a webhook body, refusing bodies nested deeper than MAX_JSON_DEPTH. */
export function parseWebhookJson(raw: Buffer): unknown {
  if (jsonTooDeep(raw)) throw new SyntaxError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  return JSON.parse(raw.toString('utf8'));
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const t = s.trim();
  // Several GHL-facing implementations send the literal "N/A" for "not signed".
  return t === '' || t.toUpperCase() === 'N/A' ? undefined : t;
}

function decodeSig(s: string): Buffer | undefined {
  if (s.length > MAX_SIG_CHARS || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

/**
 * Verifies GHL webhook signatures on the raw request bytes, before anything parses them.
 * Rules (docs/ghl-behaviour.md#webhook-signatures): a present X-GHL-Signature (Ed25519) decides alone, like GHL's SDK does;
 * otherwise X-WH-Signature (RSA-SHA256) is checked only while `acceptRsa` is on. Each scheme
 * tries the raw bytes first and then the compact re-serialisation of the parsed JSON, since
 * GHL's own examples sign JSON.stringify(body).
 */
export class WebhookVerifier {
  // Keys ordered most-recently-matched first: traffic is signed by one key, so the common case is one verify.
  readonly #keys: Record<SignatureScheme, KeyObject[]>;

  constructor(readonly opts: VerifierOptions) {
    this.#keys = { ed25519: [...opts.ed25519Keys], rsa: [...opts.rsaKeys] };
  }

  verify(raw: Buffer, headers: IncomingHttpHeaders): VerifyResult {
    const ed = header(headers, 'x-ghl-signature');
    if (ed !== undefined) return this.#check(raw, ed, 'ed25519');
    const rsa = header(headers, 'x-wh-signature');
    if (rsa !== undefined) {
      if (!this.opts.acceptRsa) return { ok: false, reason: 'legacy_disabled' };
      return this.#check(raw, rsa, 'rsa');
    }
    return { ok: false, reason: 'missing_signature' };
  }

  #check(raw: Buffer, sigText: string, scheme: SignatureScheme): VerifyResult {
    const keys = this.#keys[scheme];
    const sig = decodeSig(sigText);
    if (!sig || (scheme === 'ed25519' && sig.length !== 64)) return { ok: false, reason: 'invalid_signature' };
    const alg = scheme === 'ed25519' ? null : 'sha256';
    const matches = (data: Buffer) => {
      const i = keys.findIndex((k) => cryptoVerify(alg, data, k, sig));
      if (i > 0) keys.unshift(...keys.splice(i, 1));
      return i >= 0;
    };
    if (matches(raw)) return { ok: true, scheme, bytes: 'raw' };
    // Fallback only for bodies that parse (and nest at most MAX_JSON_DEPTH levels, so re-serialising cannot overflow
    // the stack); any other body can only match as raw bytes.
    let parsed: unknown;
    try {
      parsed = parseWebhookJson(raw);
    } catch (e) {
      return { ok: false, reason: 'invalid_signature', parseError: (e as Error).message };
    }
    const again = Buffer.from(JSON.stringify(parsed), 'utf8');
    if (!again.equals(raw) && matches(again)) return { ok: true, scheme, bytes: 'reserialized', parsed };
    return { ok: false, reason: 'invalid_signature', parsed };
  }
}
