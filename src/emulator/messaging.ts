import type { Ctx } from './context.js';
import { fullName } from './contacts-service.js';
import { badRequest, forbidden } from './errors.js';
import { emitLocationEvent } from './events.js';
import type { App, Contact, Conversation, Location, Message, MessageStatus } from './state.js';

/**
 * Numeric message `type` (GetMessageResponseDto.type). The spec (docs/ghl-behaviour.md#message-types) confirms 1 = call, 3 = email, 10 = voicemail,
 * 34 = custom call; the others are emulator choices (UNCONFIRMED) kept stable so tests can rely on them.
 */
const NUMERIC_TYPE: Record<string, number> = {
  TYPE_CALL: 1,
  TYPE_SMS: 2,
  TYPE_EMAIL: 3,
  TYPE_CAMPAIGN_VOICEMAIL: 10,
  TYPE_FACEBOOK: 11,
  TYPE_INSTAGRAM: 18,
  TYPE_WHATSAPP: 19,
  TYPE_CUSTOM_SMS: 20,
  TYPE_CUSTOM_EMAIL: 21,
  TYPE_CUSTOM_PROVIDER_SMS: 22,
  TYPE_CUSTOM_PROVIDER_EMAIL: 23,
  TYPE_LIVE_CHAT: 29,
  TYPE_GMB: 12,
  TYPE_WEBCHAT: 6,
  TYPE_RCS: 35,
  TYPE_CUSTOM_CALL: 34,
  TYPE_IVR_CALL: 25,
  TYPE_TIKTOK: 36,
  TYPE_FORM_SUBMISSION: 37,
};

/** API channel → REST messageType (and the short name used in Inbound/OutboundMessage webhooks). */
const CHANNEL: Record<string, { messageType: string; short: string }> = {
  SMS: { messageType: 'TYPE_SMS', short: 'SMS' },
  RCS: { messageType: 'TYPE_RCS', short: 'RCS' },
  Email: { messageType: 'TYPE_EMAIL', short: 'Email' },
  WhatsApp: { messageType: 'TYPE_WHATSAPP', short: 'WhatsApp' },
  GMB: { messageType: 'TYPE_GMB', short: 'GMB' },
  IG: { messageType: 'TYPE_INSTAGRAM', short: 'IG' },
  FB: { messageType: 'TYPE_FACEBOOK', short: 'FB' },
  Custom: { messageType: 'TYPE_CUSTOM_EMAIL', short: 'Custom' },
  WebChat: { messageType: 'TYPE_WEBCHAT', short: 'WebChat' },
  Live_Chat: { messageType: 'TYPE_LIVE_CHAT', short: 'Live Chat' },
  Call: { messageType: 'TYPE_CALL', short: 'CALL' },
  IVR_Call: { messageType: 'TYPE_IVR_CALL', short: 'CALL' },
  Campaign_Call: { messageType: 'TYPE_CAMPAIGN_CALL', short: 'CALL' },
  Campaign_VoiceMail: { messageType: 'TYPE_CAMPAIGN_VOICEMAIL', short: 'VoiceMail' },
  TIKTOK: { messageType: 'TYPE_TIKTOK', short: 'TIKTOK' },
  ALL_IN_ONE_CHAT: { messageType: 'TYPE_LIVE_CHAT', short: 'Live Chat' },
  FORM_SUBMISSION: { messageType: 'TYPE_FORM_SUBMISSION', short: 'FORM_SUBMISSION' },
};

function messageTypeFor(channel: string, provider: App | undefined): string {
  // Extra ("custom") providers show as TYPE_CUSTOM_PROVIDER_* (inferred from the enum names, UNCONFIRMED).
  if (provider?.conversationProvider?.isCustom) {
    if (channel === 'SMS') return 'TYPE_CUSTOM_PROVIDER_SMS';
    if (channel === 'Email' || channel === 'Custom') return 'TYPE_CUSTOM_PROVIDER_EMAIL';
  }
  return CHANNEL[channel]?.messageType ?? 'TYPE_SMS';
}

export function ensureConversation(ctx: Ctx, loc: Location, contact: Contact): Conversation {
  const existing = ctx.state.conversationOf(loc.id, contact.id);
  if (existing) return existing;
  return createConversationRecord(ctx, loc.id, contact.id);
}

export function createConversationRecord(ctx: Ctx, locationId: string, contactId: string): Conversation {
  const now = ctx.clock.now();
  const c: Conversation = {
    id: ctx.ids.id(),
    locationId,
    contactId,
    dateAdded: now,
    dateUpdated: now,
    lastMessageDate: now,
    lastMessageBody: '',
    unreadCount: 0,
    starred: false,
    inbox: true,
    deleted: false,
    type: 1,
  };
  ctx.state.conversations.set(c.id, c);
  return c;
}

/** Create a conversation via the API: one per contact; a second create fails with the existing id (UNCONFIRMED shape). */
export function createConversation(ctx: Ctx, locationId: string, contactId: string): Conversation {
  const contact = ctx.state.contacts.get(contactId);
  if (!contact || contact.locationId !== locationId) throw badRequest('Contact not found');
  const existing = ctx.state.conversationOf(locationId, contactId);
  if (existing) throw badRequest('Conversation already exists', { conversationId: existing.id });
  return createConversationRecord(ctx, locationId, contactId);
}

export function conversationToApi(c: Conversation): Record<string, unknown> {
  return {
    id: c.id,
    contactId: c.contactId,
    locationId: c.locationId,
    deleted: c.deleted,
    inbox: c.inbox,
    type: c.type,
    unreadCount: c.unreadCount,
    starred: c.starred,
    ...(c.assignedTo ? { assignedTo: c.assignedTo } : {}),
  };
}

export function conversationCreateToApi(c: Conversation): Record<string, unknown> {
  return {
    id: c.id,
    dateUpdated: new Date(c.dateUpdated).toISOString(),
    dateAdded: new Date(c.dateAdded).toISOString(),
    deleted: c.deleted,
    contactId: c.contactId,
    locationId: c.locationId,
    lastMessageDate: new Date(c.lastMessageDate).toISOString(),
    ...(c.assignedTo ? { assignedTo: c.assignedTo } : {}),
  };
}

/** Search row (ConversationSchema); the spec marks every field required, so absent contact data is ''. */
export function conversationSearchRow(ctx: Ctx, c: Conversation): Record<string, unknown> {
  const contact = ctx.state.contacts.get(c.contactId);
  const name = contact ? fullName(contact) : '';
  return {
    id: c.id,
    contactId: c.contactId,
    locationId: c.locationId,
    lastMessageBody: c.lastMessageBody,
    lastMessageType: c.lastMessageType ?? 'TYPE_SMS',
    type: c.type === 2 ? 'TYPE_EMAIL' : 'TYPE_PHONE',
    unreadCount: c.unreadCount,
    fullName: name,
    contactName: name,
    email: contact?.email ?? '',
    phone: contact?.phone ?? '',
    dateAdded: c.dateAdded,
    dateUpdated: c.dateUpdated,
    lastMessageDate: c.lastMessageDate,
    lastMessageDirection: c.lastMessageDirection ?? 'outbound',
    starred: c.starred,
    sort: [c.lastMessageDate],
  };
}

export function messageToApi(m: Message): Record<string, unknown> {
  return {
    id: m.id,
    type: m.type,
    messageType: m.messageType,
    locationId: m.locationId,
    contactId: m.contactId,
    conversationId: m.conversationId,
    dateAdded: new Date(m.dateAdded).toISOString(),
    body: m.body ?? '',
    direction: m.direction,
    status: m.status,
    contentType: m.contentType,
    attachments: m.attachments,
    source: m.source,
    ...(m.userId ? { userId: m.userId } : {}),
    ...(m.conversationProviderId ? { conversationProviderId: m.conversationProviderId } : {}),
    ...(m.altId ? { altId: m.altId } : {}),
    meta: {
      ...(m.call ? { callStatus: m.call.status } : {}),
      ...(m.callDuration !== undefined ? { callDuration: String(m.callDuration) } : {}),
      ...(m.emailMessageId ? { email: { messageIds: [m.emailMessageId] } } : {}),
    },
    ...(m.error ? { error: m.error } : {}),
  };
}

/** Inbound/OutboundMessage webhook body (flat; webhook-events/InboundMessage.md). */
export function messageEvent(
  type: 'InboundMessage' | 'OutboundMessage',
  m: Message,
): Record<string, unknown> & { type: string } {
  // Messages of a custom (extra) provider carry the full enum name in OutboundMessage (observed #224).
  const short = m.messageType.startsWith('TYPE_CUSTOM_PROVIDER_')
    ? m.messageType
    : (Object.values(CHANNEL).find((c) => c.messageType === m.messageType)?.short ??
      (m.messageType.endsWith('EMAIL') ? 'Email' : 'SMS'));
  return {
    type,
    locationId: m.locationId,
    attachments: m.attachments,
    body: m.body ?? '',
    contactId: m.contactId,
    contentType: m.contentType,
    conversationId: m.conversationId,
    dateAdded: new Date(m.dateAdded).toISOString(),
    direction: m.direction,
    messageType: short,
    messageId: m.id,
    status: m.status,
    ...(type === 'OutboundMessage' ? { source: m.source } : {}),
    ...(m.userId ? { userId: m.userId } : {}),
    ...(m.conversationProviderId ? { conversationProviderId: m.conversationProviderId } : {}),
    ...(m.emailMessageId
      ? { emailMessageId: m.emailMessageId, subject: m.subject ?? '', from: m.emailFrom ?? '', to: m.emailTo ?? [] }
      : {}),
    ...(m.call ? { callStatus: m.call.status } : {}),
    ...(m.callDuration !== undefined ? { callDuration: m.callDuration } : {}),
  };
}

export function touchConversation(ctx: Ctx, conv: Conversation, m: Message): void {
  // A conversation whose first message is an email is an email conversation (type 2), else phone (1).
  const first = ![...ctx.state.messages.values()].some((x) => x.conversationId === conv.id && x.id !== m.id);
  if (first) conv.type = m.messageType.includes('EMAIL') ? 2 : 1;
  conv.lastMessageBody = m.body ?? '';
  conv.lastMessageType = m.messageType;
  conv.lastMessageDirection = m.direction;
  conv.lastMessageDate = m.dateAdded;
  conv.dateUpdated = ctx.clock.now();
  if (m.direction === 'inbound') {
    conv.unreadCount++;
    emitLocationEvent(ctx, conv.locationId, {
      type: 'ConversationUnreadUpdate',
      locationId: conv.locationId,
      id: conv.id,
      contactId: conv.contactId,
      deleted: conv.deleted,
      inbox: conv.inbox,
      starred: conv.starred,
      unreadCount: conv.unreadCount,
    });
  }
}

/** Provider app installed on the location whose conversationProvider id is `providerId`. */
export function providerApp(ctx: Ctx, locationId: string, providerId: string): App | undefined {
  return ctx.state.appsInstalledOn(locationId).find((a) => a.conversationProvider?.id === providerId);
}

export interface OutboundInput {
  type: string;
  contactId: string;
  message?: string;
  html?: string;
  subject?: string;
  attachments?: string[];
  emailFrom?: string;
  emailTo?: string;
  emailCc?: string[];
  emailBcc?: string[];
  conversationProviderId?: string;
  replyMessageId?: string;
  threadId?: string;
  userId?: string;
  source: Message['source'];
}

/**
 * Send an outbound message (API or a user in the UI). If the location's provider for the channel — or the
 * explicitly chosen extra provider — is a custom conversation provider, GHL POSTs ProviderOutboundMessage to its
 * Delivery URL and the message stays `pending` until the provider reports a status.
 */
export function sendOutbound(
  ctx: Ctx,
  loc: Location,
  input: OutboundInput,
): { message: Message; conversation: Conversation } {
  const contact = ctx.state.contacts.get(input.contactId);
  if (!contact || contact.locationId !== loc.id) throw badRequest('Contact not found');
  const channel = input.type;
  let provider: App | undefined;
  if (input.conversationProviderId) {
    provider = providerApp(ctx, loc.id, input.conversationProviderId);
    if (!provider) throw badRequest('Conversation provider not found');
  } else if (channel === 'SMS' || channel === 'Email') {
    const appId = loc.defaultProvider[channel];
    provider = appId ? ctx.state.apps.get(appId) : undefined;
  } else if (channel === 'Custom') {
    throw badRequest('conversationProviderId is required for Custom messages');
  }
  const isEmail = channel === 'Email' || channel === 'Custom' || provider?.conversationProvider?.type === 'Email';
  if (!isEmail && channel === 'SMS' && !contact.phone) throw badRequest('Contact does not have a phone number');
  const emailTo = input.emailTo ? [input.emailTo] : contact.email ? [contact.email] : [];
  if (isEmail && emailTo.length === 0) throw badRequest('Contact does not have an email address');
  if (isEmail && !input.html && !input.message) throw badRequest('Email body (html or message) is required');
  if (!isEmail && !input.message && !input.attachments?.length) throw badRequest('Message body is required');
  const conversation = ensureConversation(ctx, loc, contact);
  const now = ctx.clock.now();
  const messageType = messageTypeFor(channel, provider);
  const viaProvider = provider?.providerDeliveryUrl !== undefined;
  const m: Message = {
    id: ctx.ids.id(),
    locationId: loc.id,
    contactId: contact.id,
    conversationId: conversation.id,
    type: NUMERIC_TYPE[messageType] ?? 2,
    messageType,
    channel,
    direction: 'outbound',
    status: provider ? 'pending' : 'delivered',
    contentType: isEmail ? 'text/html' : 'text/plain',
    attachments: input.attachments ?? [],
    source: input.source,
    dateAdded: now,
    createdAtMs: now,
    statusHistory: [],
    ...(input.message !== undefined ? { body: input.message } : input.html !== undefined ? { body: input.html } : {}),
    ...(input.html !== undefined ? { html: input.html } : {}),
    ...(input.subject !== undefined ? { subject: input.subject } : {}),
    ...(input.userId !== undefined ? { userId: input.userId } : {}),
    ...(isEmail
      ? { emailTo, emailFrom: input.emailFrom ?? `${loc.name} <${loc.email ?? 'no-reply@emulator.local'}>` }
      : {}),
    ...(input.emailCc ? { emailCc: input.emailCc } : {}),
    ...(input.emailBcc ? { emailBcc: input.emailBcc } : {}),
    ...(provider?.conversationProvider
      ? { conversationProviderId: provider.conversationProvider.id, providerAppId: provider.appId }
      : {}),
  };
  if (isEmail) m.emailMessageId = m.id;
  m.statusHistory.push({ status: m.status, at: now, by: 'ghl' });
  ctx.state.messages.set(m.id, m);
  touchConversation(ctx, conversation, m);
  if (provider && viaProvider && provider.providerDeliveryUrl) {
    const replyTo = input.replyMessageId ? ctx.state.messages.get(input.replyMessageId)?.altId : undefined;
    const payload: Record<string, unknown> = isEmail
      ? {
          contactId: contact.id,
          locationId: loc.id,
          messageId: m.id,
          emailMessageId: m.emailMessageId,
          type: 'Email',
          emailTo,
          emailFrom: m.emailFrom,
          attachments: m.attachments,
          html: m.html ?? m.body ?? '',
          subject: m.subject ?? '',
          ...(m.userId ? { userId: m.userId } : {}),
          ...(provider.conversationProvider?.isCustom && replyTo ? { replyToAltId: replyTo } : {}),
        }
      : {
          contactId: contact.id,
          locationId: loc.id,
          messageId: m.id,
          type: 'SMS',
          phone: contact.phone ?? '',
          message: m.body ?? '',
          attachments: m.attachments,
          ...(m.userId ? { userId: m.userId } : {}),
        };
    ctx.webhooks.enqueue({
      kind: 'provider',
      appId: provider.appId,
      url: provider.providerDeliveryUrl,
      eventType: 'ProviderOutboundMessage',
      payload,
      envelope: ctx.opts.providerWebhookEnvelope,
      locationId: loc.id,
      companyId: loc.companyId,
    });
  }
  emitLocationEvent(ctx, loc.id, messageEvent('OutboundMessage', m));
  return { message: m, conversation };
}

export interface ProcessInput {
  type: string;
  conversationId: string;
  contactId: string;
  conversationProviderId?: string;
  message?: string;
  attachments?: string[];
  html?: string;
  subject?: string;
  emailFrom?: string;
  emailTo?: string;
  emailCc?: string[];
  emailBcc?: string[];
  emailMessageId?: string;
  altId?: string;
  direction?: 'inbound' | 'outbound';
  date?: string;
  call?: { to?: string; from?: string; status?: string };
}

/** Add an inbound (or external outbound) message posted by a provider app. */
export function addProcessedMessage(
  ctx: Ctx,
  locationId: string,
  caller: App,
  input: ProcessInput,
  kind: 'inbound' | 'outbound-call',
): Message {
  const conv = ctx.state.conversations.get(input.conversationId);
  if (!conv || conv.deleted || conv.locationId !== locationId) throw badRequest('Conversation not found');
  if (kind === 'inbound' && conv.contactId !== input.contactId)
    throw badRequest('Conversation does not belong to this contact');
  const contact = ctx.state.contacts.get(conv.contactId);
  if (!contact) throw badRequest('Contact not found');
  let provider: App | undefined;
  if (input.conversationProviderId) {
    provider = providerApp(ctx, locationId, input.conversationProviderId);
    if (!provider) throw badRequest('Conversation provider not found');
  } else {
    // Default SMS/Email providers need no conversationProviderId (ConversationProviders.md).
    const cp = caller.conversationProvider;
    const isDefault = cp && !cp.isCustom && input.type === cp.type;
    if (!isDefault) throw badRequest('conversationProviderId is required');
    provider = caller;
  }
  if (input.type === 'Call' || kind === 'outbound-call') {
    const num = kind === 'outbound-call' ? input.call?.to : input.call?.from;
    const p = (s: string | null | undefined) => (s ?? '').replace(/[^\d+]/g, '');
    if (!num || p(num) !== p(contact.phone))
      throw badRequest(`The ${kind === 'outbound-call' ? 'to' : 'from'} number must match the contact's phone`);
  }
  const direction = kind === 'outbound-call' ? 'outbound' : (input.direction ?? ctx.opts.inboundDefaultDirection);
  const now = ctx.clock.now();
  const dateAdded = input.date ? Date.parse(input.date) : now;
  const messageType = messageTypeFor(input.type, provider);
  const isEmail = messageType.includes('EMAIL');
  const m: Message = {
    id: ctx.ids.id(),
    locationId,
    contactId: contact.id,
    conversationId: conv.id,
    type: NUMERIC_TYPE[messageType] ?? 2,
    messageType,
    channel: input.type,
    direction,
    // Provider-posted messages are already delivered; call outcomes live in meta.callStatus.
    status: 'delivered',
    contentType: isEmail ? 'text/html' : 'text/plain',
    attachments: input.attachments ?? [],
    source: 'api',
    dateAdded: Number.isNaN(dateAdded) ? now : dateAdded,
    createdAtMs: now,
    statusHistory: [],
    ...(input.message !== undefined ? { body: input.message } : input.html !== undefined ? { body: input.html } : {}),
    ...(input.html !== undefined ? { html: input.html } : {}),
    ...(input.subject !== undefined ? { subject: input.subject } : {}),
    ...(input.altId !== undefined ? { altId: input.altId } : {}),
    ...(input.call ? { call: input.call } : {}),
    ...(input.emailFrom !== undefined ? { emailFrom: input.emailFrom } : {}),
    ...(input.emailTo !== undefined ? { emailTo: [input.emailTo] } : {}),
    ...(provider.conversationProvider
      ? { conversationProviderId: provider.conversationProvider.id, providerAppId: provider.appId }
      : {}),
  };
  if (isEmail) m.emailMessageId = input.emailMessageId ?? m.id;
  m.statusHistory.push({ status: m.status, at: now, by: caller.appId });
  ctx.state.messages.set(m.id, m);
  touchConversation(ctx, conv, m);
  emitLocationEvent(ctx, locationId, messageEvent(direction === 'inbound' ? 'InboundMessage' : 'OutboundMessage', m));
  return m;
}

const RANK: Partial<Record<MessageStatus, number>> = {
  pending: 0,
  queued: 0,
  scheduled: 0,
  sent: 1,
  delivered: 2,
  read: 3,
};

/** PUT …/status: only the provider app may update; forward-only by default; optional refusal window. */
export function updateStatus(
  ctx: Ctx,
  caller: App,
  m: Message,
  body: { status: MessageStatus; error?: { code: string; type: string; message: string } },
): Message {
  if (!m.providerAppId || m.providerAppId !== caller.appId)
    throw forbidden('Message status updates are only allowed for the conversation provider of this message');
  if (ctx.clock.now() - m.createdAtMs < ctx.opts.statusRefusalWindowMs)
    throw badRequest('Message is not yet available for status updates');
  if (ctx.opts.statusTransitions === 'forward-only' && body.status !== m.status) {
    const from = RANK[m.status];
    const to = RANK[body.status];
    const ok =
      m.status === 'failed'
        ? false
        : body.status === 'failed'
          ? m.status !== 'read'
          : from !== undefined && to !== undefined && to > from;
    if (!ok) throw badRequest(`Cannot update message status from ${m.status} to ${body.status}`);
  }
  m.status = body.status;
  if (body.error) m.error = body.error;
  m.statusHistory.push({
    status: body.status,
    at: ctx.clock.now(),
    by: caller.appId,
    ...(body.error ? { error: body.error } : {}),
  });
  return m;
}
