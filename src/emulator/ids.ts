import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** mulberry32: tiny, fast, good enough for reproducible test ids. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Id source. Seeded → deterministic sequence (same seed, same ids), else crypto-random.
 * GHL ids are 20-char alphanumerics (e.g. `GKBhT6BfwY9mjzXAU3sq`).
 */
export class IdGen {
  private readonly rand: () => number;

  constructor(seed?: number) {
    this.rand = seed === undefined ? () => randomBytes(4).readUInt32BE(0) / 4294967296 : mulberry32(seed);
  }

  /** Uniform float in [0,1) from this generator (used for jitter too, so seeded runs replay). */
  random(): number {
    return this.rand();
  }

  alnum(len: number): string {
    let s = '';
    for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(this.rand() * ALPHABET.length)] ?? 'A';
    return s;
  }

  /** 20-char GHL-style id. */
  id(): string {
    return this.alnum(20);
  }

  /** RFC 4122 v4-shaped id (webhookId). */
  uuid(): string {
    const h = Array.from({ length: 32 }, () => Math.floor(this.rand() * 16).toString(16));
    h[12] = '4';
    h[16] = ((parseInt(h[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
    const s = h.join('');
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  }

  /** 24-hex Mongo-style id (appId, refreshTokenId, planId in GHL samples). */
  hex24(): string {
    let s = '';
    for (let i = 0; i < 24; i++) s += Math.floor(this.rand() * 16).toString(16);
    return s;
  }

  lowerAlnum(len: number): string {
    const a = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0; i < len; i++) s += a[Math.floor(this.rand() * a.length)] ?? 'a';
    return s;
  }

  /** JWT-looking opaque token (GHL tokens start with `eyJhbGciOiJSUzI1NiIs…`); never parsed by the emulator. */
  token(claims: Record<string, unknown>): string {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ ...claims, jti: this.alnum(16) })}.${this.alnum(43)}`;
  }
}
