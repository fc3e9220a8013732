/** The emulator's control action to drop chosen webhooks (missed-event tests), by dispatcher. */

/** Which webhooks the drop-matching control drops (all given fields must match; payload fields compared as strings). */
export interface DropRule {
  eventType?: string;
  kind?: 'app' | 'provider';
  locationId?: string;
  contactId?: string;
  messageId?: string;
  /** How many matching webhooks to drop (default 1). */
  count?: number;
}

/** Rules per dispatcher (a reset builds a new dispatcher, which starts without rules). */
const rules = new WeakMap<object, DropRule[]>();

/** Registers a rule: the next `count` webhooks matching it are recorded as `dropped` and never sent. */
export function addDropRule(ctx: { webhooks: object }, rule: DropRule): void {
  const list = rules.get(ctx.webhooks) ?? [];
  list.push({ ...rule, count: rule.count ?? 1 });
  rules.set(ctx.webhooks, list);
}

/** Called by the dispatcher for every new webhook: true = drop it (consumes one count of the first matching rule). */
export function takeDrop(
  dispatcher: object,
  d: { kind: string; eventType: string; locationId?: string; payload: Record<string, unknown> },
): boolean {
  const list = rules.get(dispatcher);
  if (!list?.length) return false;
  const i = list.findIndex(
    (r) =>
      (r.count ?? 0) > 0 &&
      (!r.eventType || r.eventType === d.eventType) &&
      (!r.kind || r.kind === d.kind) &&
      (!r.locationId || r.locationId === d.locationId) &&
      (!r.contactId || r.contactId === d.payload.contactId) &&
      (!r.messageId || r.messageId === d.payload.messageId),
  );
  if (i < 0) return false;
  const r = list[i]!;
  r.count = (r.count ?? 1) - 1;
  if (r.count <= 0) list.splice(i, 1);
  return true;
}
