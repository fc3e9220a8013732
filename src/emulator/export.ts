import type { Ctx } from './context.js';
import { badRequest } from './errors.js';
import { messageToApi } from './messaging.js';
import type { Message } from './state.js';

/** Query of GET /conversations/messages/export (operationId export-messages-by-location). */
export interface ExportQuery {
  locationId: string;
  limit?: string;
  cursor?: string;
  sortBy?: string;
  sortOrder?: string;
  conversationId?: string;
  contactId?: string;
  channel?: string;
  startDate?: string;
  endDate?: string;
}

/**
 * Which message types a `channel` filter selects. Without one, the spec says every non-email type is returned
 * (activity messages included). Grouping the custom and custom-provider types with their channel is an emulator
 * choice (UNCONFIRMED).
 */
const CHANNEL_TYPES: Record<string, (t: string) => boolean> = {
  Call: (t) => t.endsWith('CALL') || t === 'TYPE_CAMPAIGN_VOICEMAIL',
  SMS: (t) => t.endsWith('_SMS') && !t.startsWith('TYPE_CAMPAIGN'),
  Email: (t) => t.endsWith('EMAIL'),
  WhatsApp: (t) => t === 'TYPE_WHATSAPP',
  Instagram: (t) => t === 'TYPE_INSTAGRAM',
  Facebook: (t) => t === 'TYPE_FACEBOOK',
};

/** When a message last changed (its last status change, else its creation). */
const updatedAtOf = (m: Message) => Math.max(m.dateAdded, ...m.statusHistory.map((h) => h.at));

function parseDate(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) throw badRequest(`${name} must be an ISO 8601 date or epoch milliseconds`);
  return n;
}

interface Cursor {
  /** Sort value of the last message of the previous page, and its id (tie-break). */
  v: number;
  id: string;
}

const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify(c)).toString('base64url');
function decodeCursor(s: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Cursor;
    if (typeof c.v === 'number' && typeof c.id === 'string') return c;
  } catch {
    /* fall through */
  }
  throw badRequest('Invalid cursor');
}

/**
 * One page of a location's messages, sorted by createdAt (dateAdded) or updatedAt, ties broken by id; the cursor
 * names the last message returned (a keyset, so messages added meanwhile are neither skipped nor repeated).
 * `total` counts every message matching the filters.
 */
export function exportMessages(
  ctx: Ctx,
  q: ExportQuery,
): { messages: Record<string, unknown>[]; nextCursor?: string; total: number } {
  const limit = q.limit === undefined || q.limit === '' ? 100 : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 10 || limit > 500)
    throw badRequest('limit must be an integer between 10 and 500');
  const sortBy = q.sortBy ?? 'createdAt';
  if (sortBy !== 'createdAt' && sortBy !== 'updatedAt') throw badRequest('sortBy must be one of: createdAt, updatedAt');
  const sortOrder = q.sortOrder ?? 'desc';
  if (sortOrder !== 'asc' && sortOrder !== 'desc') throw badRequest('sortOrder must be one of: asc, desc');
  if (q.channel !== undefined && !CHANNEL_TYPES[q.channel])
    throw badRequest(`channel must be one of: ${Object.keys(CHANNEL_TYPES).join(', ')}`);
  const start = parseDate('startDate', q.startDate);
  const end = parseDate('endDate', q.endDate);
  const wanted = q.channel ? CHANNEL_TYPES[q.channel]! : (t: string) => !t.endsWith('EMAIL');
  const key = sortBy === 'createdAt' ? (m: Message) => m.dateAdded : updatedAtOf;
  const dir = sortOrder === 'asc' ? 1 : -1;
  const rows = [...ctx.state.messages.values()]
    .filter(
      (m) =>
        m.locationId === q.locationId &&
        wanted(m.messageType) &&
        (!q.conversationId || m.conversationId === q.conversationId) &&
        (!q.contactId || m.contactId === q.contactId) &&
        (start === undefined || m.dateAdded >= start) &&
        (end === undefined || m.dateAdded <= end),
    )
    .map((m) => ({ m, v: key(m) }))
    .sort((a, b) => dir * (a.v - b.v) || dir * (a.m.id < b.m.id ? -1 : a.m.id > b.m.id ? 1 : 0));
  const total = rows.length;
  let from = 0;
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    const after = (r: { m: Message; v: number }) =>
      dir * (r.v - c.v) > 0 || (r.v === c.v && dir * (r.m.id < c.id ? -1 : r.m.id > c.id ? 1 : 0) > 0);
    from = rows.findIndex(after);
    if (from < 0) from = rows.length;
  }
  const page = rows.slice(from, from + limit);
  const last = page.at(-1);
  const more = from + limit < rows.length;
  return {
    messages: page.map((r) => messageToApi(r.m)),
    ...(more && last ? { nextCursor: encodeCursor({ v: last.v, id: last.m.id }) } : {}),
    total,
  };
}
