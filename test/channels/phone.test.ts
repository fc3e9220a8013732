import { describe, expect, it } from 'vitest';
import { castToE164, castToLocal, normalizeE164, PhoneFormatError } from '../../src/capabilities/channels/phone.js';

describe('Cast ToLocal / ToE164 (CAST.md §6 table)', () => {
  it.each([
    ['+639171234567', '09171234567', '+639171234567'],
    ['639171234567', '09171234567', '+639171234567'],
    ['09171234567', '09171234567', '+639171234567'],
    ['9171234567', '09171234567', '+639171234567'],
  ])('%s → local %s, E.164 %s', (input, local, e164) => {
    expect(castToLocal(input)).toBe(local);
    expect(castToE164(input)).toBe(e164);
  });

  it.each(['+1234567890', '', 'abc'])('%j is an error in both directions', (input) => {
    expect(() => castToLocal(input)).toThrow(PhoneFormatError);
    expect(() => castToLocal(input)).toThrow(/invalid Philippine phone number/);
    expect(() => castToE164(input)).toThrow(PhoneFormatError);
  });

  it('drops formatting characters (spaces, dashes, parentheses)', () => {
    expect(castToLocal('+63 (917) 123-4567')).toBe('09171234567');
    expect(castToE164('0917-123-4567')).toBe('+639171234567');
    expect(castToE164('+63 917 123 4567')).toBe('+639171234567');
  });

  it('ToLocal requires 09…; ToE164 (per spec P) accepts any 10-digit national number', () => {
    expect(() => castToLocal('02812345678')).toThrow(PhoneFormatError); // Manila landline, 11 digits starting 0
    expect(castToE164('02812345678')).toBe('+632812345678');
  });

  it('rejects wrong lengths', () => {
    expect(() => castToLocal('0917123456')).toThrow(PhoneFormatError);
    expect(() => castToLocal('+6391712345678')).toThrow(PhoneFormatError);
    expect(() => castToE164('+6391712345678')).toThrow(PhoneFormatError);
    expect(() => castToE164('917123456')).toThrow(PhoneFormatError);
  });

  it('0063… (international-prefix form) is not handled, as the spec says', () => {
    expect(() => castToLocal('00639171234567')).toThrow(PhoneFormatError);
    expect(() => castToE164('00639171234567')).toThrow(PhoneFormatError);
  });
});

describe('normalizeE164 (libphonenumber-js, default region per location)', () => {
  it.each([
    // [input, region, expected]
    ['0917 123 4567', 'PH', '+639171234567'],
    ['+63 917 123 4567', 'PH', '+639171234567'],
    ['(02) 8123 4567', 'PH', '+63281234567'],
    ['(415) 555-0132', 'US', '+14155550132'],
    ['415.555.0132', 'us', '+14155550132'],
    ['+1 415 555 0132', 'PH', '+14155550132'], // international input ignores the region
    ['011 44 20 7946 0958', 'US', '+442079460958'], // US international dialling prefix
    ['020 7946 0958', 'GB', '+442079460958'],
    ['07911 123456', 'GB', '+447911123456'],
    ['0412 345 678', 'AU', '+61412345678'],
    ['(02) 9374 4000', 'AU', '+61293744000'],
    ['098765 43210', 'IN', '+919876543210'],
    ['+91 98765 43210', 'US', '+919876543210'],
    ['030 123456', 'DE', '+4930123456'],
    ['0049 30 1234567', 'DE', '+49301234567'],
    ['0151 23456789', 'DE', '+4915123456789'],
  ])('%s (%s) → %s', (input, region, expected) => {
    expect(normalizeE164(input, region)).toEqual({ ok: true, e164: expected });
  });

  it.each([
    ['', 'US', /empty/],
    ['abc', 'US', /not a phone number/],
    ['12', 'US', /invalid phone number/],
    ['+1 555 555 0100', 'US', /invalid phone number for region US/], // 555-01xx is fictional
    ['0917 123', 'PH', /invalid/],
    ['+44 20 7946', 'GB', /invalid/],
  ])('%j (%s) is rejected with a clear error', (input, region, why) => {
    const r = normalizeE164(input, region);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('INVALID_PHONE');
      expect(r.error.message).toMatch(why);
      expect(r.error.message).toContain(JSON.stringify(input));
    }
  });
});
