import { hasScope } from './auth.js';
import type { Ctx } from './context.js';
import type { App } from './state.js';

/** Scope an app needs to receive each event (docs/Scopes.md); install events need none. */
const EVENT_SCOPE: Record<string, string | undefined> = {
  ContactCreate: 'contacts.readonly',
  ContactUpdate: 'contacts.readonly',
  ContactDelete: 'contacts.readonly',
  ContactTagUpdate: 'contacts.readonly',
  ContactDndUpdate: 'contacts.readonly',
  InboundMessage: 'conversations/message.readonly',
  OutboundMessage: 'conversations/message.readonly',
  ConversationUnreadUpdate: 'conversations.readonly',
  OpportunityCreate: 'opportunities.readonly',
  OpportunityUpdate: 'opportunities.readonly',
  OpportunityDelete: 'opportunities.readonly',
  OpportunityStageUpdate: 'opportunities.readonly',
  OpportunityStatusUpdate: 'opportunities.readonly',
  OpportunityMonetaryValueUpdate: 'opportunities.readonly',
  OpportunityAssignedToUpdate: 'opportunities.readonly',
  INSTALL: undefined,
  UNINSTALL: undefined,
};

function wants(app: App, type: string): boolean {
  if (!app.webhookUrl) return false;
  if (app.webhookEvents && !app.webhookEvents.includes(type)) return false;
  const scope = EVENT_SCOPE[type];
  return scope === undefined || hasScope(app.scopes, scope);
}

/** Send an app webhook (flat JSON, `type` at top) to one app's default webhook URL. */
export function sendToApp(ctx: Ctx, app: App, payload: Record<string, unknown> & { type: string }): void {
  if (!wants(app, payload.type) || !app.webhookUrl) return;
  const locationId = typeof payload.locationId === 'string' ? payload.locationId : undefined;
  const companyId = typeof payload.companyId === 'string' ? payload.companyId : undefined;
  ctx.webhooks.enqueue({
    kind: 'app',
    appId: app.appId,
    url: app.webhookUrl,
    eventType: payload.type,
    payload,
    envelope: ctx.opts.appWebhookEnvelope,
    ...(locationId !== undefined ? { locationId } : {}),
    ...(companyId !== undefined ? { companyId } : {}),
  });
}

/** Fan an event out to every app installed on the location that subscribed and has the scope. */
export function emitLocationEvent(
  ctx: Ctx,
  locationId: string,
  payload: Record<string, unknown> & { type: string },
): void {
  for (const app of ctx.state.appsInstalledOn(locationId)) sendToApp(ctx, app, payload);
}
