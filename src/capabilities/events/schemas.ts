import { z } from 'zod';

/**
 * The bridge's own event types, each with a versioned schema of its `data` (the envelope is the same for every event,
 * GHL's included). A new field that is optional keeps the version; anything else is a new version, published beside
 * the old one. Every schema carries a component id, so it appears in the OpenAPI document (components.schemas).
 */
const id = z.string().min(1).max(200);

export const BRIDGE_EVENT_SCHEMAS = {
  'message.sent': {
    version: 1,
    schema: z
      .object({
        messageId: id.describe('GHL message id'),
        locationId: id,
        contactId: id.nullable(),
        channelMessageId: z.string().nullable().describe("the channel's id of the message, when it gave one"),
        status: z.enum(['pending', 'delivered']).describe('pending: accepted by the channel; delivered: confirmed'),
      })
      .meta({ id: 'BridgeEvent_message.sent_v1', description: 'An outbound GHL message was handed to its channel.' }),
  },
  'message.failed': {
    version: 1,
    schema: z
      .object({
        messageId: id,
        locationId: id,
        contactId: id.nullable(),
        code: z.string().describe('error code reported to GHL, e.g. CHANNEL_CONFIG, NOT_DELIVERED_IN_TIME'),
        message: z.string(),
      })
      .meta({
        id: 'BridgeEvent_message.failed_v1',
        description: 'An outbound message could not be sent; GHL is told it failed.',
      }),
  },
  'message.rejected': {
    version: 1,
    schema: z
      .object({
        messageId: id,
        locationId: id.nullable(),
        reason: z.string().describe('not_in_ghl, other_location, … and its explanation (see the provider guide)'),
      })
      .meta({
        id: 'BridgeEvent_message.rejected_v1',
        description: 'An unsigned Delivery-URL call failed confirmation: nothing was sent.',
      }),
  },
  'installation.reauth_required': {
    version: 1,
    schema: z
      .object({
        installationId: id.describe('loc:<locationId> or co:<companyId>'),
        locationId: id.nullable(),
        companyId: id.nullable(),
        reason: z.string(),
      })
      .meta({
        id: 'BridgeEvent_installation.reauth_required_v1',
        description: "GHL refused the installation's tokens; its jobs are paused until it is installed again.",
      }),
  },
  'installation.uninstalled': {
    version: 1,
    schema: z
      .object({ installationId: id, locationId: id.nullable(), companyId: id.nullable() })
      .meta({ id: 'BridgeEvent_installation.uninstalled_v1', description: 'The app was uninstalled (UNINSTALL).' }),
  },
  'endpoint.disabled': {
    version: 1,
    schema: z
      .object({
        subscriptionId: id,
        url: z.string(),
        reason: z.string().describe('e.g. "answered 410 Gone", "failing for 5 days"'),
      })
      .meta({
        id: 'BridgeEvent_endpoint.disabled_v1',
        description: 'The bridge disabled a subscription (410 answer, or failing for EVENTS_DISABLE_AFTER_DAYS).',
      }),
  },
  'chat.message': {
    version: 1,
    schema: z
      .object({
        locationId: id,
        contactId: id.nullable(),
        conversationId: id.nullable().describe('GHL conversation id'),
        messageId: id.nullable().describe('GHL message id, once GHL has it'),
        externalConversationId: id.describe("the chat product's conversation (thread) id"),
        externalMessageId: id.describe("the chat product's message id"),
        direction: z.enum(['inbound', 'outbound']).describe('inbound: from the customer; outbound: from an agent'),
        origin: z.enum(['chat', 'ghl']).describe('chat: pushed by the chat product; ghl: a GHL user reply sent to it'),
      })
      .meta({
        id: 'BridgeEvent_chat.message_v1',
        description: 'A chat message was mirrored: into GHL from the chat product, or from GHL to the chat product.',
      }),
  },
  'contact.synced': {
    version: 1,
    schema: z
      .object({
        locationId: id,
        batchId: id.describe('push batch id'),
        externalId: id.describe("the caller's record id"),
        contactId: id.nullable().describe('GHL contact id'),
        outcome: z.enum(['created', 'updated', 'unchanged', 'conflict', 'failed']),
        reason: z.string().nullable(),
      })
      .meta({ id: 'BridgeEvent_contact.synced_v1', description: 'One record of a contact push reached its outcome.' }),
  },
  'import.completed': {
    version: 1,
    schema: z
      .object({
        locationId: id,
        importId: id,
        status: z.enum(['completed', 'failed', 'cancelled']),
        rows: z.number().int().nonnegative().describe('contacts staged'),
        duplicateGroups: z.number().int().nonnegative(),
        error: z.string().nullable(),
      })
      .meta({ id: 'BridgeEvent_import.completed_v1', description: 'A contact import (GHL → staging) ended.' }),
  },
  'call.completed': {
    version: 1,
    schema: z
      .object({
        locationId: id,
        callId: id.describe("the bridge's call record id"),
        contactId: id.nullable(),
        messageId: id.nullable().describe('GHL call message id, when known'),
        direction: z.enum(['inbound', 'outbound']).nullable(),
        status: z.string().nullable().describe('GHL call status, e.g. completed, no-answer, busy'),
        durationSeconds: z.number().nonnegative().nullable(),
        recordingUrl: z.string().nullable(),
        hasTranscript: z.boolean(),
      })
      .meta({
        id: 'BridgeEvent_call.completed_v1',
        description: 'A call ended and its record (with enrichment) is stored.',
      }),
  },
} as const;

export type BridgeEventType = keyof typeof BRIDGE_EVENT_SCHEMAS;
export type BridgeEventData<T extends BridgeEventType> = z.infer<(typeof BRIDGE_EVENT_SCHEMAS)[T]['schema']>;
export const BRIDGE_EVENT_TYPES = Object.keys(BRIDGE_EVENT_SCHEMAS) as BridgeEventType[];

/** What every delivery's body is: the envelope, with the event's data (GHL: its payload as received). */
export const eventEnvelopeSchema = z
  .object({
    id: z.string().describe('stable event id (evt_…); also the webhook-id header: your idempotency key'),
    type: z.string().describe('GHL webhook type (ContactCreate, …) or a bridge event type (message.sent, …)'),
    version: z.number().int().describe('schema version of data (GHL events: 1, the payload as GHL sent it)'),
    source: z.enum(['ghl', 'bridge']),
    locationId: z.string().nullable(),
    contactId: z.string().nullable(),
    receivedAt: z.string().describe('ISO 8601: when the bridge received (GHL) or emitted (bridge) the event'),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'EventEnvelope', description: 'The JSON body of every event delivery (Standard Webhooks headers).' });

/** A filter: an exact type, a prefix ending in `*` (`Contact*`, `message.*`), or `*` for everything. */
export const EVENT_FILTER_PATTERN = /^(\*|[A-Za-z0-9_.:-]{1,100}\*?)$/;

/** Whether a type passes a subscription's filters (the SQL in service.ts applies the same rule). */
export function matchesFilter(filters: readonly string[], type: string): boolean {
  return filters.some((f) => (f.endsWith('*') ? type.startsWith(f.slice(0, -1)) : f === type));
}
