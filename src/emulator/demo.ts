import type { EmulatorControl } from './control.js';

/** Scopes a bridge-style conversation-provider app asks for (docs/ghl-behaviour.md#provider-types) plus custom fields and agency OAuth. */
export const DEMO_SCOPES = [
  'contacts.readonly',
  'contacts.write',
  'conversations.readonly',
  'conversations.write',
  'conversations/message.readonly',
  'conversations/message.write',
  'locations.readonly',
  'locations/customFields.readonly',
  'locations/customFields.write',
  'oauth.readonly',
  'oauth.write',
  'opportunities.readonly',
  'opportunities.write',
];

export interface DemoSeed {
  companyId: string;
  locationId: string;
  userId: string;
  contactId: string;
  appId: string;
  clientId: string;
  clientSecret: string;
  conversationProviderId: string;
  redirectUri: string;
  installUrl: string;
}

/**
 * Seed a demo agency, sub-account, user, contact and an SMS default-provider app. `bridgeUrl` (if known) becomes the
 * app's webhook URL (`/webhooks/ghl`), delivery URL (`/webhooks/ghl/provider`, where the bridge serves it) and redirect URI (`/oauth/callback`);
 * change them later with control.updateApp() once the bridge listens.
 */
export function seedDemo(
  emu: { control: EmulatorControl; baseUrl: string },
  o: { bridgeUrl?: string; redirectUri?: string; providerType?: 'SMS' | 'Email' } = {},
): DemoSeed {
  const c = emu.control;
  const agency = c.createAgency({ name: 'Demo Agency' });
  const user = c.createUser({ companyId: agency.id, name: 'Demo Admin', email: 'admin@demo.local', type: 'agency' });
  const loc = c.createLocation({
    companyId: agency.id,
    name: 'Demo Sub-account',
    phone: '+15550100000',
    email: 'office@demo.local',
  });
  const contact = c.createContact({
    locationId: loc.id,
    firstName: 'Demo',
    lastName: 'Contact',
    phone: '+15550100001',
    email: 'contact@demo.local',
  });
  const redirectUri =
    o.redirectUri ?? (o.bridgeUrl ? `${o.bridgeUrl}/oauth/callback` : 'http://127.0.0.1:3000/oauth/callback');
  const app = c.createApp({
    name: 'ghl-bridge (demo)',
    redirectUri,
    scopes: DEMO_SCOPES,
    ...(o.bridgeUrl
      ? { webhookUrl: `${o.bridgeUrl}/webhooks/ghl`, providerDeliveryUrl: `${o.bridgeUrl}/webhooks/ghl/provider` }
      : {}),
    conversationProvider: { type: o.providerType ?? 'SMS', isCustom: false },
  });
  const base = emu.baseUrl || 'http://127.0.0.1';
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: app.clientId,
    redirect_uri: redirectUri,
    scope: DEMO_SCOPES.join(' '),
  });
  return {
    companyId: agency.id,
    locationId: loc.id,
    userId: user.id,
    contactId: contact.id,
    appId: app.appId,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    conversationProviderId: app.conversationProviderId ?? '',
    redirectUri,
    installUrl: `${base}/v2/oauth/chooselocation?${q.toString()}`,
  };
}
