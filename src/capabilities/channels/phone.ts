import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

export type PhoneResult = { ok: true; e164: string } | { ok: false; error: { code: 'INVALID_PHONE'; message: string } };

/**
 * Normalise any human-entered phone number to E.164 using `defaultRegion` for national-format input
 * (e.g. `0917 123 4567` + 'PH' → `+639171234567`; `00 49 30 1234567` + 'DE' → `+49301234567`).
 * Input with a leading `+` is parsed as international regardless of region.
 */
export function normalizeE164(input: string, defaultRegion: string): PhoneResult {
  const trimmed = input.trim();
  if (trimmed === '') return invalid(input, 'empty phone number');
  const region = defaultRegion.toUpperCase() as CountryCode;
  const parsed = parsePhoneNumberFromString(trimmed, region);
  if (!parsed) return invalid(input, `not a phone number (default region ${region})`);
  if (!parsed.isValid()) return invalid(input, `invalid phone number for region ${parsed.country ?? region}`);
  return { ok: true, e164: parsed.number };
}

function invalid(input: string, why: string): PhoneResult {
  return { ok: false, error: { code: 'INVALID_PHONE', message: `${JSON.stringify(input)}: ${why}` } };
}

/** Thrown by the Cast conversions; `message` names the input. */
export class PhoneFormatError extends Error {
  override readonly name = 'PhoneFormatError';
}

/**
 * Cast `ToLocal` (CAST.md §6, spec P): E.164/any PH form → 11-digit local `09XXXXXXXXX`.
 * 1. drop every non-digit; 2. 12 digits starting 63 → 0 + rest; 3. 10 digits starting 9 → 0 + digits;
 * 4. 11 digits starting 0 → unchanged; 5. result must be 11 digits starting 09, else error.
 */
export function castToLocal(input: string): string {
  const d = input.replace(/\D/g, '');
  let out: string | undefined;
  if (d.length === 12 && d.startsWith('63')) out = `0${d.slice(2)}`;
  else if (d.length === 10 && d.startsWith('9')) out = `0${d}`;
  else if (d.length === 11 && d.startsWith('0')) out = d;
  if (out === undefined || !/^09\d{9}$/.test(out)) {
    throw new PhoneFormatError(`invalid Philippine phone number: ${JSON.stringify(input)}`);
  }
  return out;
}

/**
 * Cast `ToE164` (CAST.md §6, spec P): PH local/any form → `+63` + 10 digits.
 * 1. drop non-digits but keep a leading `+`; 2. starts `+63` → unchanged; 3. 12 digits starting 63 → `+` prefix;
 * 4. 11 digits starting 0 → `+63` + rest; 5. 10 digits starting 9 → `+63` prefix; 6. result must be `+63` + 10 digits.
 * As in the spec, the national number need not start with 9 (landlines pass), unlike `castToLocal`.
 */
export function castToE164(input: string): string {
  const trimmed = input.trim();
  const d = (trimmed.startsWith('+') ? '+' : '') + trimmed.replace(/\D/g, '');
  let out: string | undefined;
  if (d.startsWith('+63')) out = d;
  else if (/^63\d{10}$/.test(d)) out = `+${d}`;
  else if (/^0\d{10}$/.test(d)) out = `+63${d.slice(1)}`;
  else if (/^9\d{9}$/.test(d)) out = `+63${d}`;
  if (out === undefined || !/^\+63\d{10}$/.test(out)) {
    throw new PhoneFormatError(`invalid Philippine phone number: ${JSON.stringify(input)}`);
  }
  return out;
}
