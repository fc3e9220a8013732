import type { components as Co, operations as CoOps } from './generated/contacts.js';
import type { components as Cv, operations as CvOps } from './generated/conversations.js';
import type { operations as LocOps } from './generated/locations.js';
import type { components as OA, operations as OAOps } from './generated/oauth.js';
import type { components as Op, operations as OpOps } from './generated/opportunities.js';

/** Request/response types of the GHL operations ghl-bridge uses, from the generated spec types. */
type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type Ok<O> = O extends { responses: infer R }
  ? R extends { 200: infer A }
    ? Json<A>
    : R extends { 201: infer B }
      ? Json<B>
      : never
  : never;
type BodyOf<O> = O extends { requestBody: { content: { 'application/json': infer B } } }
  ? B
  : O extends { requestBody?: { content: { 'application/json': infer B } } }
    ? B
    : never;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type UpsertContactBody = BodyOf<CoOps['upsert-contact']>;
export type UpsertContactResponse = Ok<CoOps['upsert-contact']>;
export type CreateContactBody = BodyOf<CoOps['create-contact']>;
export type CreateContactResponse = Ok<CoOps['create-contact']>;
export type GetContactResponse = Ok<CoOps['get-contact']>;
export type UpdateContactBody = BodyOf<CoOps['update-contact']>;
export type UpdateContactResponse = Ok<CoOps['update-contact']>;
export type TagsResponse = { tags?: string[] };
export type GetLocationResponse = Ok<LocOps['get-location']>;
export type Contact = Co['schemas']['ContactsSearchSuccessfulResponseDto'] extends { contacts: Array<infer C> }
  ? C
  : Record<string, unknown>;
// The spec declares SearchBodyV2DTO without properties; shape per docs/ghl-behaviour.md#contact-search.
export interface SearchContactsBody {
  locationId: string;
  pageLimit?: number;
  page?: number;
  searchAfter?: Array<string | number>;
  query?: string;
  filters?: unknown[];
  sort?: Array<{ field: string; direction: 'asc' | 'desc' }>;
}
export type SearchContactsResponse = {
  contacts: Array<Record<string, unknown> & { id: string; searchAfter?: Array<string | number> }>;
  total: number;
};

export type CustomFieldsListResponse = Ok<LocOps['get-custom-fields']>;
export type CreateCustomFieldBody = BodyOf<LocOps['create-custom-field']>;
export type CreateCustomFieldResponse = Ok<LocOps['create-custom-field']>;

export type SearchConversationsQuery = Omit<QueryOf<CvOps['search-conversation']>, 'startAfterDate'> & {
  startAfterDate?: number;
};
export type SearchConversationsResponse = Ok<CvOps['search-conversation']>;
export type Conversation = Cv['schemas']['ConversationSchema'];
export type CreateConversationBody = BodyOf<CvOps['create-conversation']>;
export type CreateConversationResponse = Ok<CvOps['create-conversation']>;
export type GetConversationResponse = Ok<CvOps['get-conversation']>;

export type SendMessageBody = BodyOf<CvOps['send-a-new-message']>;
export type SendMessageResponse = Ok<CvOps['send-a-new-message']>;
// conversationProviderId is required by the spec but only needed for extra (custom) providers, and GHL may answer an
// empty 201 body (the message did not land): docs/ghl-behaviour.md#inbound-messages.
export type InboundMessageBody = Omit<BodyOf<CvOps['add-an-inbound-message']>, 'conversationProviderId'> & {
  conversationProviderId?: string;
};
export type InboundMessageResponse = Partial<Ok<CvOps['add-an-inbound-message']>>;
export type OutboundCallBody = BodyOf<CvOps['add-an-outbound-message']>;
export type OutboundCallResponse = Ok<CvOps['add-an-outbound-message']>;
export type UpdateMessageStatusBody = BodyOf<CvOps['update-message-status']>;
export type UpdateMessageStatusResponse = Ok<CvOps['update-message-status']>;
export type ListMessagesQuery = QueryOf<CvOps['get-messages']>;
export type MessagesPage = Cv['schemas']['GetMessagesByConversationResponseDto'];
export type Message = Cv['schemas']['GetMessageResponseDto'];
export type GetMessageResponse = Ok<CvOps['get-message']>;
export type ExportMessagesQuery = QueryOf<CvOps['export-messages-by-location']>;
export type ExportMessagesResponse = Ok<CvOps['export-messages-by-location']>;

export type LiveChatTypingBody = BodyOf<CvOps['live-chat-agent-typing']>;
export type LiveChatTypingResponse = Ok<CvOps['live-chat-agent-typing']>;

export type TokenResponse = OA['schemas']['GetAccessCodeSuccessfulResponseDto'] & { refreshTokenId?: string };
export type LocationTokenResponse = Ok<OAOps['get-location-access-token']>;
export type InstalledLocationsQuery = QueryOf<OAOps['get-installed-location']>;
export type InstalledLocationsResponse = Ok<OAOps['get-installed-location']>;

export type DuplicateContactQuery = { locationId: string; email?: string; number?: string };
export type DuplicateContactResponse = {
  contact?: (Record<string, unknown> & { id: string }) | null;
  matchingField?: string;
};

export type Pipeline = Op['schemas']['PipelinesResponseSchema'];
export type PipelineStage = NonNullable<Pipeline['stages']>[number];
export type GetPipelinesResponse = Ok<OpOps['get-pipelines']>;
export type Opportunity = Op['schemas']['SearchOpportunitiesResponseSchema'];
export type CreateOpportunityBody = BodyOf<OpOps['create-opportunity']>;
export type UpdateOpportunityBody = BodyOf<OpOps['update-opportunity']>;
export type OpportunityResponse = Ok<OpOps['get-opportunity']>;
export type UpdateOpportunityStatusBody = BodyOf<OpOps['update-opportunity-status']>;
export type OpportunitySucceeded = Ok<OpOps['delete-opportunity']>;
export type SearchOpportunitiesQuery = QueryOf<OpOps['search-opportunity']>;
export type SearchOpportunitiesResponse = Ok<OpOps['search-opportunity']>;
