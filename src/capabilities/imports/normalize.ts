import { normalizeE164 } from '../channels/index.js';

/**
 * Match keys of a staged contact, computed once when its page is staged (so duplicate detection is set-based SQL
 * and blocked comparisons, never all pairs).
 */
export interface MatchKeys {
  email: string | null;
  phone: string | null;
  /** Name tokens, folded (lower case, no accents or punctuation), sorted, space-separated. */
  name: string | null;
  /** Company, folded, without legal-form suffixes. */
  company: string | null;
  /** Blocking keys of the name + company rule: each name token with the company's first letters. */
  blocks: string[];
}

const LEGAL = new Set([
  'inc',
  'incorporated',
  'llc',
  'ltd',
  'limited',
  'corp',
  'corporation',
  'co',
  'company',
  'gmbh',
  'sa',
  'sarl',
  'bv',
  'plc',
  'pty',
  'ag',
]);

/** Lower case, accents removed, anything but letters and digits turned into spaces, single-spaced. */
export function fold(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Trimmed, lower-cased; null unless it looks like an address (local@domain). */
export function normalizeEmail(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const e = v.trim().toLowerCase();
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e) ? e : null;
}

/** E.164, reading national numbers in `region`; null when it is not a valid number. */
export function normalizePhone(v: unknown, region: string): string | null {
  if (typeof v !== 'string' || !v.trim()) return null;
  const r = normalizeE164(v, region);
  return r.ok ? r.e164 : null;
}

export function companyKey(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const words = fold(v)
    .split(' ')
    .filter((w) => w && !LEGAL.has(w));
  return words.length ? words.join(' ') : null;
}

export function nameKey(c: Record<string, unknown>): string | null {
  const parts = [c.firstName, c.lastName].filter((x): x is string => typeof x === 'string' && !!x.trim());
  const raw = parts.length
    ? parts.join(' ')
    : typeof c.name === 'string'
      ? c.name
      : typeof c.contactName === 'string'
        ? c.contactName
        : '';
  const tokens = fold(raw).split(' ').filter(Boolean).sort();
  return tokens.length ? tokens.join(' ') : null;
}

/** Company letters in a block key: enough to keep blocks small, few enough that a typo later in the name still meets. */
const COMPANY_PREFIX = 3;

export function matchKeys(c: Record<string, unknown>, region: string): MatchKeys {
  const name = nameKey(c);
  const company = companyKey(c.companyName);
  const blocks =
    name && company
      ? [...new Set(name.split(' ').filter((t) => t.length >= 2))].map(
          (t) => `${t}|${company.replace(/ /g, '').slice(0, COMPANY_PREFIX)}`,
        )
      : [];
  return { email: normalizeEmail(c.email), phone: normalizePhone(c.phone, region), name, company, blocks };
}
