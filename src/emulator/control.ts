import type { Ctx } from './context.js';
import { createContact, deleteContact, type ContactInput } from './contacts-service.js';
import { bulkCreateContacts, type BulkContactsInput, type BulkContactsResult } from './bulk-contacts.js';
import type { FaultSpec } from './faults.js';
import { addDropRule, type DropRule } from './drop-rules.js';
import { typingEvents, type TypingEvent } from './routes/chat.js';
import { messageToApi, sendOutbound } from './messaging.js';
import { authorize, installOnLocation, uninstall, type AuthorizeInput, type AuthorizeResult } from './oauth-service.js';
import type {
  ApiCall,
  Agency,
  App,
  Contact,
  Conversation,
  CustomField,
  Delivery,
  Distribution,
  Location,
  Message,
  ProviderType,
  User,
} from './state.js';

export interface CreateAppInput {
  name: string;
  redirectUri: string | string[];
  scopes: string[] | string;
  webhookUrl?: string;
  webhookEvents?: string[];
  providerDeliveryUrl?: string;
  conversationProvider?: { type: ProviderType; isCustom?: boolean; alias?: string };
  distribution?: Distribution;
  planId?: string;
  /** Fixed credentials (e.g. for a standalone demo with stable config). */
  appId?: string;
  clientId?: string;
  clientSecret?: string;
}

export interface CreatedApp {
  appId: string;
  clientId: string;
  clientSecret: string;
  versionId: string;
  conversationProviderId?: string;
}

export interface DeliveryFilter {
  appId?: string;
  kind?: 'app' | 'provider';
  eventType?: string;
  locationId?: string;
  state?: Delivery['state'];
}

/** Control API (not part of GHL): seeding, installs, UI simulation, inspection, fault injection. */
export class EmulatorControl {
  constructor(
    private readonly getCtx: () => Ctx,
    private readonly onReset: () => void,
  ) {}

  private get ctx(): Ctx {
    return this.getCtx();
  }

  createAgency(input: { name: string; id?: string; isWhitelabelCompany?: boolean; whitelabelDomain?: string }): Agency {
    const a: Agency = {
      id: input.id ?? this.ctx.ids.id(),
      name: input.name,
      isWhitelabelCompany: input.isWhitelabelCompany ?? false,
      ...(input.whitelabelDomain ? { whitelabelDomain: input.whitelabelDomain } : {}),
    };
    this.ctx.state.agencies.set(a.id, a);
    return a;
  }

  createLocation(input: {
    companyId: string;
    name: string;
    id?: string;
    phone?: string;
    email?: string;
    address?: string;
    timezone?: string;
    /** ISO 3166 alpha-2, e.g. 'PH' (returned by GET /locations/{id}). */
    country?: string;
    allowDuplicateContact?: boolean;
    duplicatePriority?: ('email' | 'phone')[];
  }): Location {
    const { state, ids, clock } = this.ctx;
    if (!state.agencies.has(input.companyId)) throw new Error(`unknown companyId ${input.companyId}`);
    const l: Location = {
      id: input.id ?? ids.id(),
      companyId: input.companyId,
      name: input.name,
      address: input.address ?? '',
      timezone: input.timezone ?? 'UTC',
      duplicates: {
        allowDuplicateContact: input.allowDuplicateContact ?? false,
        priority: input.duplicatePriority ?? ['email', 'phone'],
      },
      defaultProvider: {},
      createdAt: clock.now(),
      ...(input.phone ? { phone: input.phone } : {}),
      ...(input.country ? { country: input.country } : {}),
      ...(input.email ? { email: input.email } : {}),
    };
    state.locations.set(l.id, l);
    // Agency bulk installs with "install to future locations" also cover new sub-accounts.
    for (const [key, opt] of state.companyInstallOptions) {
      const [appId, companyId] = key.split('|');
      const app = appId ? state.apps.get(appId) : undefined;
      const inst = appId && companyId ? state.companyInstall(appId, companyId) : undefined;
      if (opt.installToFutureLocations && companyId === l.companyId && app && inst)
        installOnLocation(this.ctx, app, l.id, inst.userId, true);
    }
    return l;
  }

  updateLocation(
    locationId: string,
    patch: {
      allowDuplicateContact?: boolean;
      duplicatePriority?: ('email' | 'phone')[];
      name?: string;
      phone?: string;
      email?: string;
      country?: string;
    },
  ): Location {
    const l = this.mustLocation(locationId);
    if (patch.country) l.country = patch.country;
    if (patch.allowDuplicateContact !== undefined) l.duplicates.allowDuplicateContact = patch.allowDuplicateContact;
    if (patch.duplicatePriority) l.duplicates.priority = patch.duplicatePriority;
    if (patch.name) l.name = patch.name;
    if (patch.phone) l.phone = patch.phone;
    if (patch.email) l.email = patch.email;
    return l;
  }

  createUser(input: {
    companyId: string;
    name?: string;
    email?: string;
    locationIds?: string[];
    type?: 'agency' | 'account';
    role?: 'admin' | 'user';
    id?: string;
  }): User {
    const { state, ids } = this.ctx;
    const u: User = {
      id: input.id ?? ids.id(),
      companyId: input.companyId,
      locationIds: input.locationIds ?? [],
      name: input.name ?? 'Emulator User',
      email: input.email ?? 'user@emulator.local',
      type: input.type ?? (input.locationIds?.length ? 'account' : 'agency'),
      role: input.role ?? 'admin',
    };
    state.users.set(u.id, u);
    return u;
  }

  createApp(input: CreateAppInput): CreatedApp {
    const { state, ids } = this.ctx;
    const appId = input.appId ?? input.clientId?.split('-')[0] ?? ids.hex24();
    const clientId = input.clientId ?? `${appId}-${ids.lowerAlnum(8)}`;
    const cp = input.conversationProvider;
    const app: App = {
      appId,
      clientId,
      clientSecret: input.clientSecret ?? ids.uuid(),
      name: input.name,
      redirectUris: Array.isArray(input.redirectUri) ? input.redirectUri : [input.redirectUri],
      scopes: Array.isArray(input.scopes) ? input.scopes : input.scopes.split(/\s+/).filter(Boolean),
      distribution: input.distribution ?? 'both',
      versionId: ids.hex24(),
      ...(input.webhookUrl ? { webhookUrl: input.webhookUrl } : {}),
      ...(input.webhookEvents ? { webhookEvents: input.webhookEvents } : {}),
      ...(input.providerDeliveryUrl ? { providerDeliveryUrl: input.providerDeliveryUrl } : {}),
      ...(input.planId ? { planId: input.planId } : {}),
      ...(cp
        ? {
            conversationProvider: {
              id: ids.hex24(),
              type: cp.type,
              isCustom: cp.isCustom ?? false,
              ...(cp.alias ? { alias: cp.alias } : {}),
            },
          }
        : {}),
    };
    state.apps.set(appId, app);
    state.appsByClientId.set(clientId, appId);
    return {
      appId,
      clientId,
      clientSecret: app.clientSecret,
      versionId: app.versionId,
      ...(app.conversationProvider ? { conversationProviderId: app.conversationProvider.id } : {}),
    };
  }

  /** Change URLs/scopes later (the bridge's URL is known only after it listens). */
  updateApp(
    clientId: string,
    patch: Partial<
      Pick<CreateAppInput, 'webhookUrl' | 'providerDeliveryUrl' | 'redirectUri' | 'scopes' | 'webhookEvents'>
    >,
  ): App {
    const app = this.mustApp(clientId);
    if (patch.webhookUrl !== undefined) app.webhookUrl = patch.webhookUrl;
    if (patch.providerDeliveryUrl !== undefined) app.providerDeliveryUrl = patch.providerDeliveryUrl;
    if (patch.webhookEvents !== undefined) app.webhookEvents = patch.webhookEvents;
    if (patch.redirectUri !== undefined)
      app.redirectUris = Array.isArray(patch.redirectUri) ? patch.redirectUri : [patch.redirectUri];
    if (patch.scopes !== undefined)
      app.scopes = Array.isArray(patch.scopes) ? patch.scopes : patch.scopes.split(/\s+/).filter(Boolean);
    return app;
  }

  getApp(clientId: string): App {
    return this.mustApp(clientId);
  }

  /** What the chooselocation page does: install and issue a code; returns the redirect URL with code (+state). */
  authorize(input: AuthorizeInput): AuthorizeResult {
    return authorize(this.ctx, input);
  }

  install(input: AuthorizeInput): AuthorizeResult {
    return authorize(this.ctx, input);
  }

  uninstall(input: { clientId: string; locationId?: string; companyId?: string }): { removed: number } {
    if (!input.locationId && !input.companyId) throw new Error('uninstall: locationId or companyId required');
    const where = input.locationId ? { locationId: input.locationId } : { companyId: String(input.companyId) };
    return { removed: uninstall(this.ctx, input.clientId, where) };
  }

  /** Select the location's default SMS/Email provider (Settings › Phone Numbers / Email Services). */
  setProvider(input: { locationId: string; clientId?: string | null; type: ProviderType }): Location {
    const loc = this.mustLocation(input.locationId);
    if (!input.clientId) {
      delete loc.defaultProvider[input.type];
      return loc;
    }
    const app = this.mustApp(input.clientId);
    if (!app.conversationProvider || app.conversationProvider.type !== input.type)
      throw new Error(`app ${app.clientId} is not a ${input.type} conversation provider`);
    if (!this.ctx.state.locationInstall(app.appId, loc.id))
      throw new Error(`app ${app.clientId} is not installed on ${loc.id}`);
    loc.defaultProvider[input.type] = app.appId;
    return loc;
  }

  createContact(input: ContactInput & { locationId: string }): Contact {
    const loc = this.mustLocation(input.locationId);
    return createContact(this.ctx, loc, input, { checkDuplicates: false });
  }

  /** A GHL user deletes a contact (ContactDelete is sent to the apps' webhooks). */
  deleteContact(contactId: string): boolean {
    const c = this.ctx.state.contacts.get(contactId);
    if (!c) return false;
    deleteContact(this.ctx, c);
    return true;
  }

  /** A GHL user adds a custom field in Settings (key defaults to `<model>.` + the snake-cased name). */
  createCustomField(input: {
    locationId: string;
    name: string;
    dataType: string;
    fieldKey?: string;
    options?: string[];
    model?: 'contact' | 'opportunity';
  }): CustomField {
    this.mustLocation(input.locationId);
    const model = input.model ?? 'contact';
    const f: CustomField = {
      id: this.ctx.ids.id(),
      locationId: input.locationId,
      name: input.name,
      fieldKey:
        input.fieldKey ??
        `${model}.${input.name
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, '_')
          .replace(/^_|_$/g, '')}`,
      placeholder: '',
      dataType: input.dataType,
      position: 0,
      picklistOptions: input.options ?? [],
      model,
      dateAdded: this.ctx.clock.now(),
    };
    this.ctx.state.customFields.set(f.id, f);
    return f;
  }

  listCustomFields(f: { locationId?: string } = {}): CustomField[] {
    return [...this.ctx.state.customFields.values()].filter((c) => !f.locationId || c.locationId === f.locationId);
  }

  /** A GHL user deletes a custom field (its values go with it). */
  deleteCustomField(id: string): boolean {
    const f = this.ctx.state.customFields.get(id);
    if (!f) return false;
    this.ctx.state.customFields.delete(id);
    for (const c of this.ctx.state.contacts.values()) c.customFields = c.customFields.filter((v) => v.id !== id);
    return true;
  }

  /** Up to 100,000 contacts at once, deterministic for a seed, with planted duplicates (see bulk-contacts.ts). */
  bulkCreateContacts(input: BulkContactsInput): BulkContactsResult {
    return bulkCreateContacts(this.ctx, input);
  }

  /** A GHL user sends from the conversations screen (source 'app'); custom providers get ProviderOutboundMessage. */
  sendMessageAsUser(input: {
    locationId: string;
    contactId: string;
    /** Live_Chat, WhatsApp, FB, IG: GHL's own channels (no provider; the app gets only the OutboundMessage event). */
    type: 'SMS' | 'Email' | 'Live_Chat' | 'WhatsApp' | 'FB' | 'IG';
    message?: string;
    subject?: string;
    html?: string;
    attachments?: string[];
    userId?: string;
    conversationProviderId?: string;
    replyMessageId?: string;
  }): Message {
    const loc = this.mustLocation(input.locationId);
    const userId = input.userId ?? [...this.ctx.state.users.values()].find((u) => u.companyId === loc.companyId)?.id;
    const { message } = sendOutbound(this.ctx, loc, {
      type: input.type,
      contactId: input.contactId,
      source: 'app',
      ...(input.message !== undefined ? { message: input.message } : {}),
      ...(input.subject !== undefined ? { subject: input.subject } : {}),
      ...(input.html !== undefined ? { html: input.html } : {}),
      ...(input.attachments ? { attachments: input.attachments } : {}),
      ...(userId ? { userId } : {}),
      ...(input.conversationProviderId ? { conversationProviderId: input.conversationProviderId } : {}),
      ...(input.replyMessageId ? { replyMessageId: input.replyMessageId } : {}),
    });
    return message;
  }

  listAgencies(): Agency[] {
    return [...this.ctx.state.agencies.values()];
  }
  listLocations(f: { companyId?: string } = {}): Location[] {
    return [...this.ctx.state.locations.values()].filter((l) => !f.companyId || l.companyId === f.companyId);
  }
  listApps(): App[] {
    return [...this.ctx.state.apps.values()];
  }
  listInstallations(f: { clientId?: string; locationId?: string; companyId?: string } = {}) {
    const appId = f.clientId ? this.mustApp(f.clientId).appId : undefined;
    return this.ctx.state.installations.filter(
      (i) =>
        (!appId || i.appId === appId) &&
        (!f.locationId || i.locationId === f.locationId) &&
        (!f.companyId || i.companyId === f.companyId),
    );
  }
  listContacts(f: { locationId?: string } = {}): Contact[] {
    return [...this.ctx.state.contacts.values()].filter((c) => !f.locationId || c.locationId === f.locationId);
  }
  listConversations(f: { locationId?: string; contactId?: string } = {}): Conversation[] {
    return [...this.ctx.state.conversations.values()].filter(
      (c) => (!f.locationId || c.locationId === f.locationId) && (!f.contactId || c.contactId === f.contactId),
    );
  }
  listMessages(f: { locationId?: string; conversationId?: string; contactId?: string } = {}): Message[] {
    return [...this.ctx.state.messages.values()].filter(
      (m) =>
        (!f.locationId || m.locationId === f.locationId) &&
        (!f.conversationId || m.conversationId === f.conversationId) &&
        (!f.contactId || m.contactId === f.contactId),
    );
  }
  getMessage(id: string): Message | undefined {
    return this.ctx.state.messages.get(id);
  }
  /** The message as GET /conversations/messages/{id} would render it. */
  getMessageApi(id: string): Record<string, unknown> | undefined {
    const m = this.ctx.state.messages.get(id);
    return m ? messageToApi(m) : undefined;
  }
  listDeliveries(f: DeliveryFilter = {}): Delivery[] {
    return this.ctx.state.deliveries.filter(
      (d) =>
        (!f.appId || d.appId === f.appId) &&
        (!f.kind || d.kind === f.kind) &&
        (!f.eventType || d.eventType === f.eventType) &&
        (!f.locationId || d.locationId === f.locationId) &&
        (!f.state || d.state === f.state),
    );
  }

  injectFault(f: FaultSpec): void {
    this.ctx.faults.add(f);
  }
  listFaults(): FaultSpec[] {
    return this.ctx.faults.list();
  }

  /** Sign Delivery-URL calls from now on (true) or send them unsigned like real GHL (false, the default). */
  setSignProviderDeliveries(on: boolean): void {
    this.ctx.opts.signProviderDeliveries = on;
  }

  /** Answered GHL API calls (method, path without query, status), optionally filtered. */
  listApiCalls(f: { method?: string; pathPattern?: string } = {}): ApiCall[] {
    const re = f.pathPattern ? new RegExp(f.pathPattern) : undefined;
    return this.ctx.state.apiCalls.filter(
      (c) => (!f.method || c.method === f.method.toUpperCase()) && (!re || re.test(c.path)),
    );
  }

  /** Revoke one access or refresh token (it then fails like an invalid one). */
  revokeToken(token: string): boolean {
    const a = this.ctx.state.accessTokens.get(token);
    if (a) a.revoked = true;
    const r = this.ctx.state.refreshTokens.get(token);
    if (r) r.revoked = true;
    return Boolean(a ?? r);
  }

  /** Drop the next `count` (default 1) webhooks that match every given field (e.g. one ProviderOutboundMessage). */
  dropMatchingWebhooks(rule: DropRule): void {
    addDropRule(this.ctx, rule);
  }
  /** Live-chat typing indicators GHL received (POST /conversations/providers/live-chat/typing). */
  listTyping(): TypingEvent[] {
    return [...typingEvents(this.ctx)];
  }
  dropWebhooks(n: number): void {
    this.ctx.webhooks.dropWebhooks(n);
  }
  delayWebhooks(ms: number): void {
    this.ctx.webhooks.delayWebhooks(ms);
  }
  advanceClock(ms: number): number {
    this.ctx.clock.advance(ms);
    return this.ctx.clock.now();
  }

  /** Forget all state, faults and rate-limit counters (keys and options stay). */
  reset(): void {
    this.onReset();
  }

  private mustLocation(id: string): Location {
    const l = this.ctx.state.locations.get(id);
    if (!l) throw new Error(`unknown locationId ${id}`);
    return l;
  }

  private mustApp(clientId: string): App {
    const a = this.ctx.state.appByClientId(clientId) ?? this.ctx.state.apps.get(clientId);
    if (!a) throw new Error(`unknown clientId ${clientId}`);
    return a;
  }
}
