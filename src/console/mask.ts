/** Keys whose values are secrets wherever they appear in a payload shown to an operator. */
const SECRET_KEY =
  /(secret|token|password|passwd|authorization|api[-_]?key|private[-_]?key|signature|credential|cookie)/i;
/** Values that are secrets whatever their key: our ciphertexts ("v1.<keyId>.…"), JWTs, bearer strings. */
const SECRET_VALUE = [
  /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_+/=-]{16,}/,
  /^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\./,
  /^Bearer\s+\S+/i,
];

export const MASK = '••••••';

/**
 * A copy of a JSON value with secrets masked: values under secret-looking keys (token, secret, password, apiKey, …) and
 * values that look like tokens (JWTs, our ciphertexts, bearer strings). Used for every payload the console shows.
 */
export function maskSecrets(value: unknown, depth = 0): unknown {
  if (depth > 20) return MASK;
  if (typeof value === 'string') return SECRET_VALUE.some((r) => r.test(value)) ? MASK : value;
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] =
        SECRET_KEY.test(k) && v !== null && v !== '' && typeof v !== 'boolean' ? MASK : maskSecrets(v, depth + 1);
    }
    return out;
  }
  return value;
}
