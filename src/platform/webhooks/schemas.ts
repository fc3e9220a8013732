import { z } from 'zod';

/**
 * Zod schemas for the event types of GHL's official per-event pages (docs/ghl-behaviour.md#webhook-envelope).
 *
 * Deliberately lenient: every object is loose (GHL adds fields without notice), every field but
 * the discriminator is optional and may be null (the docs' examples omit fields their schemas
 * list, and several examples are known to be wrong). What is checked is the type of the fields
 * that are present, so a handler can rely on `typeof payload.contactId === 'string' | undefined`.
 * Envelope fields (`timestamp`, `webhookId`) are part of every schema.
 */

const str = z.string().nullish();
const num = z.number().nullish();
const bool = z.boolean().nullish();
const arr = z.array(z.unknown()).nullish();
const obj = z.record(z.string(), z.unknown()).nullish();

const envelope = { timestamp: str, webhookId: str };

const contact = {
  locationId: str,
  id: str,
  address1: str,
  city: str,
  state: str,
  companyName: str,
  country: str,
  source: str,
  dateAdded: str,
  dateOfBirth: str,
  dnd: bool,
  dndSettings: obj,
  email: str,
  name: str,
  firstName: str,
  lastName: str,
  phone: str,
  postalCode: str,
  tags: z.array(z.string()).nullish(),
  website: str,
  attachments: arr,
  assignedTo: str,
  customFields: z.array(z.looseObject({ id: str, value: z.unknown() })).nullish(),
};

const message = {
  locationId: str,
  attachments: arr,
  body: str,
  contactId: str,
  contentType: str,
  conversationId: str,
  dateAdded: str,
  direction: str,
  messageType: str,
  status: str,
  messageId: str,
  userId: str,
  source: str,
  conversationProviderId: str,
  callDuration: num,
  callStatus: str,
  // Email variant (docs/ghl-behaviour.md#webhook-envelope).
  emailMessageId: str,
  threadId: str,
  provider: str,
  from: str,
  to: z.union([z.string(), z.array(z.string())]).nullish(),
  cc: z.unknown().optional(),
  bcc: z.unknown().optional(),
  subject: str,
};

const opportunity = {
  locationId: str,
  id: str,
  assignedTo: str,
  contactId: str,
  monetaryValue: num,
  name: str,
  pipelineId: str,
  pipelineStageId: str,
  source: str,
  status: str,
  dateAdded: str,
};

const invoice = {
  _id: str,
  status: str,
  liveMode: bool,
  amountPaid: num,
  altId: str,
  altType: str,
  name: str,
  businessDetails: obj,
  invoiceNumber: str,
  currency: str,
  contactDetails: obj,
  issueDate: str,
  dueDate: str,
  discount: obj,
  invoiceItems: arr,
  total: num,
  title: str,
  amountDue: num,
  createdAt: str,
  updatedAt: str,
  totalSummary: obj,
};

const order = {
  altId: str,
  altType: str,
  _id: str,
  contactId: str,
  contactSnapshot: obj,
  status: str,
  fulfillmentStatus: str,
  currency: str,
  amount: num,
  liveMode: bool,
  items: arr,
  amountSummary: obj,
  taxSummary: arr,
  source: obj,
  createdAt: str,
  updatedAt: str,
};

const note = { locationId: str, id: str, body: str, contactId: str, dateAdded: str };
const task = {
  locationId: str,
  id: str,
  assignedTo: str,
  body: str,
  contactId: str,
  title: str,
  dateAdded: str,
  dueDate: str,
};
const association = {
  id: str,
  associationType: str,
  firstObjectKey: str,
  firstObjectLabel: str,
  firstObjectToSecondObjectCardinality: str,
  secondObjectKey: str,
  secondObjectLabel: str,
  secondObjectToFirstObjectCardinality: str,
  key: str,
  locationId: str,
};
const relation = {
  id: str,
  firstObjectKey: str,
  firstRecordId: str,
  secondObjectKey: str,
  secondRecordId: str,
  associationId: str,
  locationId: str,
};
const record = { locationId: str, owners: arr, followers: arr, properties: arr, id: str, objectKey: str };
const objectSchema = {
  labels: obj,
  description: str,
  searchableProperties: arr,
  primaryDisplayProperty: str,
  key: str,
  locationId: str,
  createdBy: obj,
  updatedBy: obj,
  objectType: str,
};
const product = {
  _id: str,
  description: str,
  variants: arr,
  medias: arr,
  locationId: str,
  name: str,
  productType: str,
  availableInStore: bool,
  userId: str,
  createdAt: str,
  updatedAt: str,
  statementDescriptor: str,
  image: str,
};
const price = {
  _id: str,
  membershipOffers: arr,
  variantOptionIds: arr,
  locationId: str,
  product: str,
  userId: str,
  name: str,
  priceType: str,
  currency: str,
  amount: num,
  recurring: obj,
  createdAt: str,
  updatedAt: str,
  compareAtPrice: num,
  trackInventory: z.unknown().optional(),
  availableQuantity: num,
  allowOutOfStockPurchases: bool,
};
const install = {
  appId: z.string(),
  companyId: str,
  locationId: str,
  userId: str,
  planId: str,
  versionId: str,
  installType: str,
  trial: obj,
  isWhitelabelCompany: bool,
  whitelabelDetails: obj,
  companyName: str,
};
const location = { id: str, name: str, email: str, stripeProductId: str, companyId: str };

function event<T extends string, S extends z.core.$ZodLooseShape>(type: T, shape: S) {
  return z.looseObject({ type: z.literal(type), ...envelope, ...shape });
}

const families: Array<[readonly string[], z.core.$ZodLooseShape]> = [
  [['ContactCreate', 'ContactUpdate', 'ContactDelete', 'ContactDndUpdate', 'ContactTagUpdate'], contact],
  [['InboundMessage', 'OutboundMessage'], message],
  [
    [
      'OpportunityCreate',
      'OpportunityUpdate',
      'OpportunityDelete',
      'OpportunityAssignedToUpdate',
      'OpportunityMonetaryValueUpdate',
      'OpportunityStageUpdate',
      'OpportunityStatusUpdate',
    ],
    opportunity,
  ],
  [
    [
      'InvoiceCreate',
      'InvoiceUpdate',
      'InvoiceDelete',
      'InvoicePaid',
      'InvoicePartiallyPaid',
      'InvoiceSent',
      'InvoiceVoid',
    ],
    invoice,
  ],
  [['OrderCreate', 'OrderStatusUpdate'], order],
  [['NoteCreate', 'NoteUpdate', 'NoteDelete'], note],
  [['TaskCreate', 'TaskDelete', 'TaskComplete'], task],
  [['AppointmentCreate', 'AppointmentUpdate', 'AppointmentDelete'], { locationId: str, appointment: obj }],
  [['AssociationCreate', 'AssociationUpdate', 'AssociationDelete'], association],
  [['RelationCreate', 'RelationDelete'], relation],
  [['RecordCreate', 'RecordUpdate', 'RecordDelete'], record],
  [['ObjectSchemaCreate', 'ObjectSchemaUpdate'], objectSchema],
  [['ProductCreate', 'ProductUpdate', 'ProductDelete'], product],
  [['PriceCreate', 'PriceUpdate', 'PriceDelete'], price],
  [['LocationCreate', 'LocationUpdate'], location],
  [
    ['CampaignStatusUpdate'],
    {
      locationId: str,
      id: str,
      contactId: str,
      status: str,
      templateId: str,
      replied: z.union([z.string(), z.boolean()]).nullish(),
      dateAdded: str,
    },
  ],
  [
    ['ConversationUnreadUpdate'],
    { locationId: str, id: str, contactId: str, unreadCount: num, inbox: bool, starred: bool, deleted: bool },
  ],
  [['LCEmailStats'], { locationId: str, companyId: str, webhookPayload: obj }],
  [
    ['UserCreate'],
    {
      id: str,
      locationId: str,
      companyId: str,
      firstName: str,
      lastName: str,
      email: str,
      phone: str,
      extension: str,
      role: str,
      permissions: obj,
    },
  ],
  [['INSTALL'], install],
  [['UNINSTALL'], { appId: z.string(), companyId: str, locationId: str }],
  [['PLAN_CHANGE'], { appId: str, locationId: str, companyId: str, userId: str, currentPlanId: str, newPlanId: str }],
];

/** The name used for conversation-provider deliveries (their `type` is the channel, docs/ghl-behaviour.md#provider-outbound-message). */
export const PROVIDER_OUTBOUND = 'ProviderOutboundMessage';

export const providerOutboundMessageSchema = z.looseObject({
  ...envelope,
  type: z.enum(['SMS', 'Email']),
  contactId: z.string(),
  locationId: z.string(),
  messageId: z.string(),
  emailMessageId: str,
  attachments: z.array(z.string()).nullish(),
  message: str,
  phone: str,
  // Schema says string, example shows an array (docs/ghl-behaviour.md#provider-outbound-message): accept both.
  emailTo: z.union([z.string(), z.array(z.string())]).nullish(),
  emailFrom: str,
  html: str,
  subject: str,
  userId: str,
  replyToAltId: str,
});
export type ProviderOutboundMessage = z.infer<typeof providerOutboundMessageSchema>;

export const EVENT_SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
  ...families.flatMap(([types, shape]) => types.map((t): [string, z.ZodType] => [t, event(t, shape)])),
  [PROVIDER_OUTBOUND, providerOutboundMessageSchema],
]);

/** Every event type this module knows (documented in webhook-events/ plus the provider delivery). */
export const KNOWN_EVENT_TYPES: readonly string[] = [...EVENT_SCHEMAS.keys()];

export const contactEventSchema = event('ContactCreate', contact);
export type ContactEvent = Omit<z.infer<typeof contactEventSchema>, 'type'> & { type: string };
export const messageEventSchema = event('InboundMessage', message);
export type MessageEvent = Omit<z.infer<typeof messageEventSchema>, 'type'> & {
  type: 'InboundMessage' | 'OutboundMessage';
};
export const installEventSchema = event('INSTALL', install);
export type InstallEvent = z.infer<typeof installEventSchema>;

export type ValidationResult = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

/** Validates a payload against its type's schema; types without a schema pass as-is. */
export function validateEvent(type: string, payload: unknown): ValidationResult {
  const schema = EVENT_SCHEMAS.get(type);
  if (!schema) return { ok: true, value: payload as Record<string, unknown> };
  const r = schema.safeParse(payload);
  if (r.success) return { ok: true, value: r.data as Record<string, unknown> };
  return { ok: false, error: z.prettifyError(r.error).slice(0, 2000) };
}
