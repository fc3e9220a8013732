import { sql, type RawBuilder } from 'kysely';

/**
 * The strings that name a GHL resource across the bridge, in one place (issue 11 item 4).
 *
 * An installation's id (`ghl_installations.id`) and the job scope of everything done for that resource are the
 * same string on purpose: re-authorization pauses the scope named by the installation id, so every job acting for
 * a location must carry exactly this scope. Never spell `loc:` / `co:` anywhere else.
 *
 * - `loc:<locationId>` — a sub-account (location) installation and the scope of its jobs
 * - `co:<companyId>`  — an agency (company) installation and the scope of its jobs
 */
const LOCATION = 'loc:';
const COMPANY = 'co:';

/** Installation id / job scope of a location. */
export const locationKey = (locationId: string): string => `${LOCATION}${locationId}`;
/** Installation id / job scope of a company (agency). */
export const companyKey = (companyId: string): string => `${COMPANY}${companyId}`;

/** The key of a resource reference: the location's when it names one, else the company's. */
export const resourceKey = (ref: {
  locationId?: string | null | undefined;
  companyId?: string | null | undefined;
}): string | undefined =>
  ref.locationId ? locationKey(ref.locationId) : ref.companyId ? companyKey(ref.companyId) : undefined;

export const isLocationKey = (key: string): boolean => key.startsWith(LOCATION);
export const isCompanyKey = (key: string): boolean => key.startsWith(COMPANY);
/** Whether a string is already a key (rather than a bare location id). */
export const isResourceKey = (key: string): boolean => isLocationKey(key) || isCompanyKey(key);

/** SQL for the location key of a text column or expression (null stays null), for statements that build jobs. */
export const locationKeySql = (locationId: RawBuilder<unknown>): RawBuilder<string | null> =>
  sql<string | null>`case when ${locationId} is null then null else ${sql.lit(LOCATION)} || ${locationId} end`;

/** Ordering keys: jobs sharing one run one at a time, in order. */
export const orderingKeys = {
  /** Provider traffic of one contact of a location (outbound sends, inbound messages). */
  contact: (locationId: string, contactId: string): string => `${locationKey(locationId)}:contact:${contactId}`,
  /** Status updates of one message. */
  messageStatus: (messageId: string): string => `status:${messageId}`,
  /** Inbound messages of one sender of a location, in the order the channel sent them. */
  inboundSender: (locationId: string, address: string): string => `in:${locationId}:${address}`,
  /** Webhook events about one contact of a location (create before update). */
  webhookContact: (locationId: string, contactId: string): string => `wh:${locationId}:${contactId}`,
};
