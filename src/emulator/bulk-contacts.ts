import type { Ctx } from './context.js';
import type { Contact } from './state.js';

/**
 * Control action (not part of GHL): bulk-creates up to 100,000 contacts in one location at once, deterministic for a
 * seed (same seed, same contacts and ids), optionally with planted duplicates whose pairs are returned, so a test or
 * a benchmark knows the true duplicates. No webhooks are sent (GHL's own bulk import does not send one per contact
 * either); `dateAdded` is spread one millisecond apart before the emulator's clock, in creation order.
 */
export interface BulkContactsInput {
  locationId: string;
  count: number;
  seed?: number;
  /** Extra contacts, each a planted duplicate of one generated contact (counted on top of `count`). */
  duplicates?: { email?: number; phone?: number; nameCompany?: number };
  /** Share of generated contacts with a company (default 1; name + company duplicates need one). */
  companyShare?: number;
  tags?: string[];
}

export interface PlantedDuplicate {
  rule: 'email' | 'phone' | 'name_company';
  /** The generated contact and its planted duplicate. */
  originalId: string;
  duplicateId: string;
}

export interface BulkContactsResult {
  created: number;
  firstId: string | null;
  lastId: string | null;
  planted: PlantedDuplicate[];
}

export const MAX_BULK_CONTACTS = 100_000;

const FIRST = [
  'Aaron',
  'Abigail',
  'Adrian',
  'Alberto',
  'Alexis',
  'Alfredo',
  'Amanda',
  'Andrea',
  'Angela',
  'Antonio',
  'Arthur',
  'Audrey',
  'Barbara',
  'Beatrice',
  'Benjamin',
  'Bernard',
  'Brandon',
  'Bridget',
  'Camille',
  'Carlos',
  'Caroline',
  'Cecilia',
  'Charles',
  'Charlotte',
  'Claudia',
  'Clement',
  'Cynthia',
  'Daniela',
  'Deborah',
  'Dominic',
  'Dorothy',
  'Eduardo',
  'Eleanor',
  'Elliott',
  'Emmanuel',
  'Esther',
  'Eugene',
  'Fabian',
  'Felicia',
  'Fernando',
  'Florence',
  'Francis',
  'Gabriel',
  'Georgia',
  'Gerald',
  'Gilbert',
  'Gregory',
  'Harriet',
  'Hector',
  'Helena',
  'Horace',
  'Ignacio',
  'Isabel',
  'Jasmine',
  'Jeffrey',
  'Jerome',
  'Joaquin',
  'Josephine',
  'Juliana',
  'Justin',
  'Katrina',
  'Kenneth',
  'Lawrence',
  'Leonard',
  'Lorenzo',
  'Lucinda',
  'Madeline',
  'Marcus',
  'Marguerite',
  'Martina',
  'Matthias',
  'Maxine',
  'Melanie',
  'Mitchell',
  'Monique',
  'Nathaniel',
  'Nicolas',
  'Octavia',
  'Oliver',
  'Patricia',
  'Penelope',
  'Quentin',
  'Rafael',
  'Raymond',
  'Rebecca',
  'Reginald',
  'Roberta',
  'Rosalind',
  'Samantha',
  'Sebastian',
  'Stanley',
  'Stephanie',
  'Terrence',
  'Theodore',
  'Valentina',
  'Veronica',
  'Vincent',
  'Virginia',
  'Walter',
  'Winifred',
  'Xavier',
  'Yolanda',
];
const LAST = [
  'Abernathy',
  'Alvarado',
  'Ashworth',
  'Balderrama',
  'Bancroft',
  'Beaumont',
  'Blackwood',
  'Bollinger',
  'Brennan',
  'Calloway',
  'Carmichael',
  'Castellano',
  'Chamberlain',
  'Cornwallis',
  'Dalrymple',
  'Delacroix',
  'Donovan',
  'Dunleavy',
  'Eastwood',
  'Ellsworth',
  'Fairbanks',
  'Fitzgerald',
  'Galloway',
  'Gutierrez',
  'Hadley',
  'Halvorsen',
  'Hargreaves',
  'Hollister',
  'Ingersoll',
  'Jablonski',
  'Kavanagh',
  'Kingsley',
  'Lancaster',
  'Lindqvist',
  'Lockhart',
  'Macintyre',
  'Mansfield',
  'Montgomery',
  'Nakamura',
  'Northcott',
  'Oberlin',
  'Okonkwo',
  'Pemberton',
  'Pendleton',
  'Quintero',
  'Radcliffe',
  'Ravensworth',
  'Rothschild',
  'Salazar',
  'Sandoval',
  'Schumacher',
  'Sinclair',
  'Stanhope',
  'Sutherland',
  'Takahashi',
  'Thornbury',
  'Underwood',
  'Valdivia',
  'Vanderbilt',
  'Wadsworth',
  'Whitfield',
  'Winterbottom',
  'Yamamoto',
  'Zimmerman',
];
const CO1 = [
  'Amber',
  'Apex',
  'Aurora',
  'Beacon',
  'Birch',
  'Cobalt',
  'Copper',
  'Crescent',
  'Delta',
  'Ember',
  'Falcon',
  'Granite',
  'Harbor',
  'Indigo',
  'Juniper',
  'Keystone',
  'Lumen',
  'Maple',
  'Meridian',
  'Nimbus',
  'Onyx',
  'Orchid',
  'Pinnacle',
  'Quartz',
  'Redwood',
  'Sable',
  'Summit',
  'Tundra',
  'Umber',
  'Vertex',
  'Willow',
  'Zephyr',
];
const CO2 = [
  'Analytics',
  'Bakery',
  'Builders',
  'Capital',
  'Clinic',
  'Consulting',
  'Dental',
  'Design',
  'Electric',
  'Foods',
  'Freight',
  'Holdings',
  'Interiors',
  'Landscaping',
  'Logistics',
  'Media',
  'Motors',
  'Outfitters',
  'Partners',
  'Pharmacy',
  'Plumbing',
  'Realty',
  'Robotics',
  'Roofing',
  'Studios',
  'Supply',
  'Systems',
  'Textiles',
  'Travel',
  'Ventures',
  'Wellness',
  'Works',
];
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One letter of `s` (not the first) replaced: a typo. */
function typo(s: string, r: () => number): string {
  const i = 1 + Math.floor(r() * (s.length - 1));
  const c = s[i]!.toLowerCase();
  const repl = c === 'e' ? 'a' : c === 'a' ? 'e' : c === 'o' ? 'u' : 'e';
  return s.slice(0, i) + repl + s.slice(i + 1);
}

export function bulkCreateContacts(ctx: Ctx, input: BulkContactsInput): BulkContactsResult {
  const count = input.count;
  const d = input.duplicates ?? {};
  const planted = (d.email ?? 0) + (d.phone ?? 0) + (d.nameCompany ?? 0);
  if (!Number.isInteger(count) || count < 0 || count > MAX_BULK_CONTACTS)
    throw new Error(`count must be a whole number 0–${MAX_BULK_CONTACTS}`);
  for (const [k, v] of Object.entries(d))
    if (!Number.isInteger(v) || v < 0) throw new Error(`duplicates.${k} must be a whole number ≥ 0`);
  if (planted > count) throw new Error('duplicates must not outnumber count (each copies a generated contact)');
  if (!ctx.state.locations.has(input.locationId)) throw new Error(`unknown locationId ${input.locationId}`);
  const r = rng(input.seed ?? 1);
  const id = () => {
    let s = '';
    for (let i = 0; i < 20; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
    return s;
  };
  const companyShare = input.companyShare ?? 1;
  const total = count + planted;
  const base = ctx.clock.now() - total;
  const made: Contact[] = [];
  const add = (
    c: Omit<Contact, 'id' | 'locationId' | 'dnd' | 'customFields' | 'type' | 'dateAdded' | 'dateUpdated'>,
  ) => {
    const at = base + made.length;
    const contact: Contact = {
      id: id(),
      locationId: input.locationId,
      dnd: false,
      customFields: [],
      type: 'lead',
      dateAdded: at,
      dateUpdated: at,
      ...c,
    };
    ctx.state.contacts.set(contact.id, contact);
    made.push(contact);
    return contact;
  };
  for (let i = 0; i < count; i++) {
    const firstName = FIRST[Math.floor(r() * FIRST.length)]!;
    const lastName = LAST[Math.floor(r() * LAST.length)]!;
    const company =
      r() < companyShare
        ? `${CO1[Math.floor(r() * CO1.length)]} ${CO2[Math.floor(r() * CO2.length)]} ${1 + Math.floor(r() * 999)}`
        : null;
    add({
      firstName,
      lastName,
      name: `${firstName} ${lastName}`,
      email: `${firstName}.${lastName}.${i}@example.com`.toLowerCase(),
      phone: `+1415${String(2_000_000 + i).padStart(7, '0')}`,
      companyName: company,
      tags: input.tags ? [...input.tags] : [],
      source: 'bulk',
    });
  }
  // Planted duplicates copy distinct generated contacts (picked without repeats), each after all generated ones.
  const pairs: PlantedDuplicate[] = [];
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let next = 0;
  const pick = () => made[order[next++]!]!;
  const other = (k: number) => ({
    firstName: FIRST[(k * 7) % FIRST.length]!,
    lastName: `${LAST[(k * 11) % LAST.length]!}-${k}`,
  });
  for (let k = 0; k < (d.email ?? 0); k++) {
    const o = pick();
    const n = other(k);
    // Same address, other case and surrounding spaces; nothing else in common.
    const c = add({
      ...n,
      name: `${n.firstName} ${n.lastName}`,
      email: ` ${o.email!.toUpperCase()} `,
      phone: null,
      companyName: null,
      tags: [],
    });
    pairs.push({ rule: 'email', originalId: o.id, duplicateId: c.id });
  }
  for (let k = 0; k < (d.phone ?? 0); k++) {
    const o = pick();
    const n = other(k + 10_000);
    const digits = o.phone!.slice(2);
    // Same number in national format.
    const c = add({
      ...n,
      name: `${n.firstName} ${n.lastName}`,
      email: null,
      phone: `(${digits.slice(0, 3)}) ${digits.slice(3, 6)}-${digits.slice(6)}`,
      companyName: null,
      tags: [],
    });
    pairs.push({ rule: 'phone', originalId: o.id, duplicateId: c.id });
  }
  for (let k = 0; k < (d.nameCompany ?? 0); k++) {
    let o = pick();
    while (!o.companyName && next < order.length) o = pick();
    if (!o.companyName)
      throw new Error('not enough generated contacts with a company to plant name + company duplicates');
    const lastName = typo(o.lastName!, r);
    // A typo in the last name, the company with a legal-form suffix; other e-mail and phone.
    const c = add({
      firstName: o.firstName!,
      lastName,
      name: `${o.firstName} ${lastName}`,
      email: `dup.${k}@example.org`,
      phone: null,
      companyName: `${o.companyName}, Inc.`,
      tags: [],
    });
    pairs.push({ rule: 'name_company', originalId: o.id, duplicateId: c.id });
  }
  return { created: made.length, firstId: made[0]?.id ?? null, lastId: made.at(-1)?.id ?? null, planted: pairs };
}
