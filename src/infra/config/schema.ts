import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/**
 * Every environment variable ghl-bridge reads, with its meaning, default and an example.
 * The README's configuration table is generated from this list (`ghl-bridge config --markdown`),
 * so the table and the validator can never drift apart.
 */
export interface VarSpec {
  name: string;
  schema: z.ZodType;
  secret?: boolean;
  example: string;
  description: string;
  group: 'server' | 'storage' | 'queue' | 'ghl' | 'webhooks' | 'provider' | 'events' | 'security' | 'sandbox';
}

const isNetwork = (n: string): boolean => ipaddr.isValidCIDR(n) || ipaddr.isValid(n);

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: 'expected a whole number' })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { message: `expected at least ${min}` })
        .max(max, { message: `expected at most ${max}` }),
    );
const url = z.url({ message: 'expected an absolute URL' });
const pgUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, { message: 'expected a postgres:// or postgresql:// connection URL' });
// 32 random bytes, base64: `openssl rand -base64 32`. Several keys "id:key,id:key" for rotation.
const keyList = z.string().refine(
  (s) =>
    s.split(',').every((part) => {
      const [id, key] = part.split(':');
      return !!id && /^[A-Za-z0-9_-]+$/.test(id) && !!key && Buffer.from(key, 'base64').length === 32;
    }),
  { message: 'expected "keyId:base64key[,keyId:base64key…]" with 32-byte keys (openssl rand -base64 32)' },
);
const level = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
  message: 'expected one of fatal, error, warn, info, debug, trace, silent',
});

export const VARS = [
  {
    name: 'PORT',
    group: 'server',
    schema: int(0, 65535).default(3000),
    example: '3000',
    description: 'HTTP port of the bridge.',
  },
  {
    name: 'HOST',
    group: 'server',
    schema: z.string().min(1).default('0.0.0.0'),
    example: '0.0.0.0',
    description: 'Interface to listen on.',
  },
  {
    name: 'PUBLIC_URL',
    group: 'server',
    schema: url.optional(),
    example: 'https://bridge.example.com',
    description:
      'Public base URL of the bridge, used to build the OAuth redirect URI and the webhook URLs you paste into the GHL app. Default: http://localhost:PORT.',
  },
  {
    name: 'LOG_LEVEL',
    group: 'server',
    schema: level.default('info'),
    example: 'info',
    description: 'pino log level.',
  },
  {
    name: 'LOG_HOT_PATH_REQUESTS',
    group: 'server',
    schema: bool.default(false),
    example: 'false',
    description:
      'Log every GHL webhook, channel-inbound and /v1 API request at info. Off by default: those requests are counted in ghl_bridge_http_requests_total and only ' +
      'warnings and errors are logged (request logging cost about a quarter of intake throughput in bench:intake).',
  },
  {
    name: 'BODY_LIMIT_BYTES',
    group: 'server',
    schema: int(1024, 50 * 1024 * 1024).default(1024 * 1024),
    example: '1048576',
    description: 'Largest accepted request body; larger bodies get 413.',
  },
  {
    name: 'SHUTDOWN_TIMEOUT_MS',
    group: 'server',
    schema: int(0, 600_000).default(15_000),
    example: '15000',
    description:
      'On SIGTERM/SIGINT: how long in-flight requests and jobs may take before jobs are released back to the queue.',
  },
  {
    name: 'HTTP_HEADERS_TIMEOUT_MS',
    group: 'server',
    schema: int(1000, 600_000).default(10_000),
    example: '10000',
    description:
      'A client must send the complete request headers within this time of connecting (or of its previous request), else the connection is closed (slow clients, slowloris). At most HTTP_REQUEST_TIMEOUT_MS.',
  },
  {
    name: 'HTTP_REQUEST_TIMEOUT_MS',
    group: 'server',
    schema: int(1000, 3_600_000).default(30_000),
    example: '30000',
    description:
      'A client must send the whole request, headers and body, within this time, else it gets 408 and the connection is closed.',
  },
  {
    name: 'HTTP_KEEP_ALIVE_TIMEOUT_MS',
    group: 'server',
    schema: int(1000, 600_000).default(72_000),
    example: '72000',
    description:
      'An idle keep-alive connection is closed after this long. Keep it above the idle timeout of a load balancer in front (60 s on AWS ALB).',
  },
  {
    name: 'HTTP_CONNECTION_TIMEOUT_MS',
    group: 'server',
    schema: int(1000, 3_600_000).default(120_000),
    example: '120000',
    description:
      'A connection with no traffic in either direction for this long is destroyed (socket inactivity timeout).',
  },
  {
    name: 'ADMIN_API_KEY',
    group: 'security',
    secret: true,
    schema: z.string().min(24, { message: 'expected at least 24 characters' }).optional(),
    example: 'a-long-random-string-of-32-chars',
    description:
      'Bearer key for the admin API and dashboard (/admin/*). Admin routes are disabled when unset (sandbox mode generates one).',
  },
  {
    name: 'DATABASE_URL',
    group: 'storage',
    secret: true,
    schema: pgUrl.optional(),
    example: 'postgres://bridge:pw@db:5432/bridge',
    description: 'PostgreSQL connection URL. When unset, the embedded PGlite store in DATA_DIR is used.',
  },
  {
    name: 'DATABASE_SCHEMA',
    group: 'storage',
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: 'expected a lower-case SQL identifier' })
      .default('ghl_bridge'),
    example: 'ghl_bridge',
    description: 'PostgreSQL schema holding the bridge tables (created if missing).',
  },
  {
    name: 'DATABASE_POOL_MAX',
    group: 'storage',
    schema: int(1, 200).default(10),
    example: '10',
    description: 'PostgreSQL connection pool size per replica.',
  },
  {
    name: 'DATABASE_PREPARED_STATEMENTS',
    group: 'storage',
    schema: bool.default(true),
    example: 'true',
    description:
      'Send the hot queue and intake statements as server-side prepared statements (saves planning on every call). Set false behind a pooler in transaction mode without prepared-statement support (PgBouncer < 1.21).',
  },
  {
    name: 'DATA_RETENTION_DAYS',
    group: 'storage',
    schema: int(0, 3650).default(30),
    example: '30',
    description:
      'Handled webhook events and finished messages (outbound with a final status in GHL, inbound posted to GHL) older than this many days are deleted, hourly and in batches. Waiting and dead events, and inbound messages GHL never received, are kept. 0 = keep everything.',
  },
  {
    name: 'DATA_DIR',
    group: 'storage',
    schema: z.string().min(1).default('./data'),
    example: './data',
    description: 'Directory of the embedded PGlite store (used when DATABASE_URL is unset).',
  },
  {
    name: 'EMBEDDED_STORE_THREAD',
    group: 'storage',
    schema: z.enum(['worker', 'process', 'main']).default('worker'),
    example: 'worker',
    description:
      "Where the embedded store runs its statements: `worker`, a worker thread of its own, so a busy store never holds up HTTP answers and timers; `process`, a child process (messages over IPC); or `main`, the bridge's own thread (every statement blocks the event loop while it runs). Compared in bench:embedded.",
  },
  {
    name: 'WORKER_CONCURRENCY',
    group: 'queue',
    schema: int(0, 500).default(10),
    example: '10',
    description: 'Jobs run at once per replica (0 = this replica runs no jobs, HTTP only).',
  },
  {
    name: 'WORKER_LOCATION_CONCURRENCY',
    group: 'queue',
    schema: int(1, 500).default(4),
    example: '4',
    description:
      "GHL-calling jobs (status reports, confirmations) of one location run at once per replica, claimed round-robin across locations: one location's burst, held to its own GHL rate limit, never takes every slot.",
  },
  {
    name: 'JOB_LEASE_MS',
    group: 'queue',
    schema: int(1000, 3_600_000).default(30_000),
    example: '30000',
    description: 'A claimed job is re-run by another worker if its worker stops heartbeating for this long.',
  },
  {
    name: 'JOB_CLAIM_BATCH',
    group: 'queue',
    schema: int(1, 10_000).optional(),
    example: '100',
    description:
      'Jobs leased per claim statement (default 10 × WORKER_CONCURRENCY). Larger batches raise throughput; smaller ones spread slow jobs more evenly across replicas.',
  },
  {
    name: 'JOB_POLL_MS',
    group: 'queue',
    schema: int(10, 60_000).default(500),
    example: '500',
    description: 'Idle polling interval for new jobs (jobs enqueued by the same replica wake workers at once).',
  },
  {
    name: 'JOB_MAX_ATTEMPTS',
    group: 'queue',
    schema: int(1, 100).default(10),
    example: '10',
    description: 'Default attempts before a job is dead.',
  },
  {
    name: 'JOB_RETENTION_HOURS',
    group: 'queue',
    schema: int(0, 24 * 365).default(72),
    example: '72',
    description:
      'Cancelled jobs are pruned after this many hours (completed jobs are deleted at once; dead jobs are kept until retried).',
  },
  {
    name: 'GHL_CLIENT_ID',
    group: 'ghl',
    schema: z
      .string()
      .regex(/^[A-Za-z0-9]+-[A-Za-z0-9]+$/, { message: 'expected the Marketplace client id, "<appId>-<suffix>"' })
      .optional(),
    example: '68a32958b5154ca8bbdc4d40-meh5chaj',
    description:
      'Marketplace app client id. With GHL_CLIENT_SECRET unset too, the bridge runs in sandbox mode against the built-in emulator.',
  },
  {
    name: 'GHL_CLIENT_SECRET',
    group: 'ghl',
    secret: true,
    schema: z.string().min(8, { message: 'expected the Marketplace client secret' }).optional(),
    example: 'b2f0…',
    description: 'Marketplace app client secret.',
  },
  {
    name: 'GHL_SCOPES',
    group: 'ghl',
    schema: z
      .string()
      .min(1)
      .default(
        'contacts.readonly contacts.write conversations.readonly conversations.write conversations/message.readonly conversations/message.write locations.readonly locations/customFields.readonly locations/customFields.write oauth.readonly oauth.write opportunities.readonly opportunities.write',
      ),
    example: 'contacts.readonly contacts.write conversations.write conversations/message.write',
    description: 'Space-separated OAuth scopes requested at install.',
  },
  {
    name: 'GHL_API_BASE',
    group: 'ghl',
    schema: url.default('https://services.leadconnectorhq.com'),
    example: 'https://services.leadconnectorhq.com',
    description: "GHL API base URL (the emulator's URL in sandbox mode).",
  },
  {
    name: 'GHL_MARKETPLACE_BASE',
    group: 'ghl',
    schema: url.default('https://marketplace.gohighlevel.com'),
    example: 'https://marketplace.leadconnectorhq.com',
    description: 'Host of the install (chooselocation) page; set the white-label host here if you use one.',
  },
  {
    name: 'GHL_CONVERSATION_PROVIDER_ID',
    group: 'ghl',
    schema: z.string().min(1).optional(),
    example: '6612a0c3e1f0a8b1c2d3e4f5',
    description:
      "Id of the app's conversation provider (Marketplace app → Conversation Providers); required for inbound messages to custom providers.",
  },
  {
    name: 'GHL_RENEW_IDLE_TOKENS_DAYS',
    group: 'ghl',
    schema: int(0, 300).default(30),
    example: '30',
    description:
      'OAuth installations whose tokens were not refreshed for this many days are refreshed by a task every 6 hours, so the refresh token of a location without traffic (valid a year unless used) never lapses. 0 turns it off.',
  },
  {
    name: 'GHL_RECONCILE_INTERVAL_MIN',
    group: 'ghl',
    schema: int(0, 7 * 24 * 60).default(60),
    example: '60',
    description:
      "How often installations are compared with GHL's installed-locations list (agency installs); 0 turns it off.",
  },
  {
    name: 'TOKEN_ENCRYPTION_KEYS',
    group: 'security',
    secret: true,
    schema: keyList.optional(),
    example: 'k1:Jx0c…base64…=',
    description:
      'AES-256-GCM keys for tokens and channel secrets at rest, "id:base64[,id:base64]". The first key encrypts; the others still decrypt (rotation: `ghl-bridge keys rotate`). Required outside sandbox mode.',
  },
  {
    name: 'WEBHOOK_EXTRA_ED25519_KEYS',
    group: 'webhooks',
    schema: z.string().optional(),
    example: '-----BEGIN PUBLIC KEY-----\\n…',
    description:
      'Additional Ed25519 public keys (PEM, separated by blank lines or "|") accepted for X-GHL-Signature besides GHL\'s published key.',
  },
  {
    name: 'WEBHOOK_EXTRA_RSA_KEYS',
    group: 'webhooks',
    schema: z.string().optional(),
    example: '-----BEGIN PUBLIC KEY-----\\n…',
    description:
      'Additional RSA public keys (PEM, separated by blank lines or "|") accepted for the legacy X-WH-Signature besides GHL\'s published key.',
  },
  {
    name: 'WEBHOOK_ACCEPT_LEGACY_RSA',
    group: 'webhooks',
    schema: bool.default(true),
    example: 'true',
    description: 'Also accept the legacy RSA X-WH-Signature (GHL is retiring it; set false once it is gone).',
  },
  {
    name: 'WEBHOOK_TOLERANCE_SEC',
    group: 'webhooks',
    schema: int(1, 86_400).default(7200),
    example: '7200',
    description:
      "Reject webhooks whose timestamp is further than this from now. The default covers GHL's 429-retry horizon (6 retries 10 min apart plus jitter, about 70 min), so a redelivery that keeps its original timestamp is still accepted; replays inside the window are stopped by deduplication on webhookId. Below 4500 s, redeliveries of webhooks answered 429 can be refused as stale.",
  },
  {
    name: 'WEBHOOK_INSECURE_SKIP_VERIFY',
    group: 'webhooks',
    schema: bool.default(false),
    example: 'false',
    description:
      'Local experiments only: accept unsigned webhooks (warns on every request; refused when NODE_ENV=production or real GHL credentials are set).',
  },
  {
    name: 'WEBHOOK_MAX_BACKLOG',
    group: 'webhooks',
    schema: int(1, 10_000_000).default(100_000),
    example: '100000',
    description: 'When this many webhook jobs wait, intake answers 429 so GHL retries later.',
  },
  {
    name: 'WEBHOOK_MAX_BODY_BYTES',
    group: 'webhooks',
    schema: int(1024, 50 * 1024 * 1024).default(1024 * 1024),
    example: '1048576',
    description: 'Largest accepted webhook body; larger ones get 413 (GHL does not retry those, so keep it generous).',
  },
  {
    name: 'WEBHOOK_PERSIST_TIMEOUT_MS',
    group: 'webhooks',
    schema: int(100, 60_000).default(5000),
    example: '5000',
    description:
      'If storing a webhook takes longer than this, answer 429 so GHL retries instead of timing out (timeouts are not retried).',
  },
  {
    name: 'PROVIDER_SEND_MAX_ATTEMPTS',
    group: 'provider',
    schema: int(1, 100).default(8),
    example: '8',
    description:
      'Attempts to hand one outbound message to its channel (5xx, 429, timeouts) before it is reported to GHL as failed with the last reason.',
  },
  {
    name: 'PROVIDER_RETRY_BASE_MS',
    group: 'provider',
    schema: int(10, 600_000).default(2000),
    example: '2000',
    description:
      'First delay between channel send retries; doubles per attempt (equal jitter, capped at 5 min). A channel Retry-After wins.',
  },
  {
    name: 'PROVIDER_STATUS_REFUSAL_MAX_MS',
    group: 'provider',
    schema: int(0, 3_600_000).default(120_000),
    example: '120000',
    description:
      'GHL refuses status updates (400) for a short time after a message is created: such refusals are retried with growing delays for this long after the message arrived, then the status job fails.',
  },
  {
    name: 'PROVIDER_POLL_BASE_MS',
    group: 'provider',
    schema: int(10, 3_600_000).default(5000),
    example: '5000',
    description:
      "Channels without push receipts (Cast): first delay before polling a pending message's status; doubles up to 5 min.",
  },
  {
    name: 'PROVIDER_POLL_GIVE_UP_MS',
    group: 'provider',
    schema: int(1000, 7 * 24 * 3_600_000).default(30 * 60_000),
    example: '1800000',
    description:
      'Stop polling a message still unconfirmed this long after it was sent; it stays "pending" in GHL (delivery unknown) unless a late receipt arrives.',
  },
  {
    name: 'PROVIDER_DELIVERY_TOKENS',
    group: 'provider',
    secret: true,
    schema: z
      .string()
      .refine((s) => s.split(',').every((t) => /^[A-Za-z0-9_-]{22,128}$/.test(t.trim())), {
        message:
          'expected one or more comma-separated URL-safe tokens of 22–128 characters [A-Za-z0-9_-] (at least 128 random bits: openssl rand -base64 32 | tr "+/" "-_" | tr -d "=")',
      })
      .optional(),
    example: 'q3Jx…43 chars…,old-token-still-accepted',
    description:
      'Secret token(s) of the provider Delivery URL <PUBLIC_URL>/webhooks/ghl/provider/<token>. The first is the one to paste into GHL; all are accepted (several during a rotation). When set, the tokens stored in the database (generated at first start, rotated with `ghl-bridge provider rotate-token`) are ignored.',
  },
  {
    name: 'PROVIDER_CONFIRMATION',
    group: 'provider',
    schema: z
      .enum(['event_then_lookup', 'event', 'lookup', 'none'], {
        message: 'expected one of event_then_lookup, event, lookup, none',
      })
      .default('event_then_lookup'),
    example: 'event_then_lookup',
    description:
      'How a delivery authenticated only by the URL token (GHL does not sign Delivery-URL calls) is confirmed before it is sent: event_then_lookup = wait for the signed OutboundMessage app event, then read the message from GHL (GET /conversations/messages/{id}); event = the event only; lookup = read at once (one API call per message); none = send unconfirmed (not recommended). Signed deliveries are never confirmed.',
  },
  {
    name: 'PROVIDER_CONFIRMATION_WAIT_MS',
    group: 'provider',
    schema: int(0, 3_600_000).default(10_000),
    example: '10000',
    description:
      'event_then_lookup: how long to wait for the OutboundMessage event before looking the message up in GHL.',
  },
  {
    name: 'PROVIDER_CONFIRMATION_TIMEOUT_MS',
    group: 'provider',
    schema: int(1000, 7 * 24 * 3_600_000).default(15 * 60_000),
    example: '900000',
    description:
      'event mode: a delivery whose OutboundMessage event has not arrived this long after it is rejected (not sent), reason not_confirmed.',
  },
  {
    name: 'PROVIDER_TOKEN_OVERLAP_HOURS',
    group: 'provider',
    schema: int(0, 24 * 365).default(72),
    example: '72',
    description:
      'After `ghl-bridge provider rotate-token`, the previous stored token keeps working this long (0 = until `provider rotate-token --retire-previous` or `provider retire-previous`).',
  },
  {
    name: 'PROVIDER_CATCHUP_INTERVAL_MS',
    group: 'provider',
    schema: int(0, 24 * 3_600_000).default(5 * 60_000),
    example: '300000',
    description:
      "Catch-up: how often each location's recent messages are read from GHL (GET /conversations/messages/export, bulk lane) to find outbound messages of this provider that GHL never delivered (bridge down, network). Also runs at start-up and on demand (`ghl-bridge provider catch-up`). The default costs about 24 API calls per location per hour when idle (0.3 % of the daily budget). 0 = only at start-up and on demand.",
  },
  {
    name: 'PROVIDER_CATCHUP_MAX_AGE_MS',
    group: 'provider',
    schema: int(60_000, 30 * 24 * 3_600_000).default(3_600_000),
    example: '3600000',
    description:
      'Catch-up: a missed message older than this is not sent late but reported failed to GHL ("not delivered to the provider in time") and counted in ghl_bridge_provider_catchup_messages_total{outcome="expired"}.',
  },
  {
    name: 'PROVIDER_CATCHUP_SETTLE_MS',
    group: 'provider',
    schema: int(0, 3_600_000).default(30_000),
    example: '30000',
    description:
      "Catch-up: messages younger than this are left to GHL's own delivery (the checkpoint stops before them).",
  },
  {
    name: 'CHAT_MESSAGE_TYPE',
    group: 'provider',
    schema: z.enum(['Custom', 'Live_Chat', 'SMS', 'Email']).default('Custom'),
    example: 'Custom',
    description:
      'Chat API (`/v1/locations/{id}/chat/*`): the GHL Add Inbound `type` of chat messages posted into GHL (Custom or Live_Chat provider; SMS or Email when the chat product really is that channel). A client GHL users could not reply to on that type (SMS without a phone, Email without an e-mail, Custom without either) goes in as Live_Chat. Typing indicators are forwarded only for Live_Chat clients.',
  },
  {
    name: 'CHAT_CLIENT_ID_FIELD',
    group: 'provider',
    schema: z
      .string()
      .regex(
        /^[A-Za-z][A-Za-z0-9 _-]{0,59}$/,
        'expected a custom field name: a letter, then up to 59 of A-Z a-z 0-9 space _ -',
      )
      .default('External Chat Client Id'),
    example: 'External Chat Client Id',
    description:
      "Chat API: name of the per-location contact custom field that holds the chat product's client id (created by the bridge when missing); the client map is rebuilt from it when lost.",
  },
  {
    name: 'CHAT_FORWARD_OTHER_CHANNELS',
    group: 'provider',
    schema: bool.default(false),
    example: 'false',
    description:
      "Chat API: also forward to the chat product the replies a GHL user sends to a chat-linked contact on GHL's other channels (the app-level OutboundMessage event: SMS, Email, WhatsApp, Facebook, Instagram, GMB, Live Chat …), with the chat ids. Global for every location. Replies through the bridge's own conversation provider are always forwarded; Live Chat replies are always forwarded for clients whose messages go into GHL as Live_Chat.",
  },
  {
    name: 'CHAT_RECONCILE_INTERVAL_MS',
    group: 'provider',
    schema: int(0, 24 * 3_600_000).default(5 * 60_000),
    example: '300000',
    description:
      'Chat API missed-event repair: how often recently active linked conversations are read from GHL (GET /conversations/{id}/messages, bulk lane) to forward GHL-user replies the chat product never got. 0 = only on demand.',
  },
  {
    name: 'CHAT_RECONCILE_LOOKBACK_MS',
    group: 'provider',
    schema: int(60_000, 30 * 24 * 3_600_000).default(3_600_000),
    example: '3600000',
    description:
      'Chat API missed-event repair: conversations active within this window are read, and messages younger than it are considered.',
  },
  {
    name: 'CALLS_TRANSCRIPT_WAIT_MS',
    group: 'provider',
    schema: int(0, 7 * 86_400_000).default(3_600_000),
    example: '3600000',
    description:
      'Calls: GHL produces a transcript some time after the call; its transcription endpoint is asked again (backoff from CALLS_TRANSCRIPT_RETRY_BASE_MS, doubling up to 10 min) while it answers 404/not ready, for this long after the call. Then the call is kept without a transcript, with the reason.',
  },
  {
    name: 'CALLS_TRANSCRIPT_RETRY_BASE_MS',
    group: 'provider',
    schema: int(10, 3_600_000).default(30_000),
    example: '30000',
    description: 'Calls: first delay before asking GHL for a transcript again; doubles per try, capped at 10 min.',
  },
  {
    name: 'CALLS_LINK_TTL_SEC',
    group: 'provider',
    schema: int(10, 7 * 86_400).default(3600),
    example: '3600',
    description:
      'Calls: how long a signed recording link in a call record (recording.signedUrl) stays valid. The plain recording URL needs an API key instead.',
  },
  {
    name: 'CALLS_MATCH_WINDOW_SEC',
    group: 'provider',
    schema: int(0, 86_400).default(900),
    example: '900',
    description:
      "Calls: a workflow payload without GHL's call message id and a call message (or its app event) of the same contact, with a compatible direction, are one call when their times are at most this far apart beyond the call's duration.",
  },
  {
    name: 'CALLS_MESSAGE_GRACE_MS',
    group: 'provider',
    schema: int(0, 86_400_000).default(120_000),
    example: '120000',
    description:
      "Calls: how long a workflow call without GHL's call message id waits for the message (its app event, then one more look-up) before it is completed without it (call.completed).",
  },
  {
    name: 'CONTACTS_DEFAULT_REGION',
    group: 'provider',
    schema: z
      .string()
      .regex(/^[A-Za-z]{2}$/, 'expected a two-letter ISO country code, e.g. US or PH')
      .default('US'),
    example: 'US',
    description:
      "Contact push: region for national-format phone numbers (normalised to E.164) when the location has no region setting (PUT /v1/locations/{id}/contacts/settings) and GHL's location record gives no country.",
  },
  {
    name: 'CALLS_CONVERSATION_PROVIDER_ID',
    group: 'provider',
    schema: z.string().min(1).max(64).optional(),
    example: '6612a0c3e1f0a8b1c2d3e4f5',
    description:
      "Calls: id of the app's Call conversation provider, used when posting call logs into GHL (POST /v1/locations/{locationId}/calls). Default: GHL_CONVERSATION_PROVIDER_ID.",
  },
  {
    name: 'TRIGGER_MAX_ATTEMPTS',
    group: 'ghl',
    schema: int(1, 100).default(10),
    example: '10',
    description:
      'Workflow triggers: attempts to forward one accepted trigger call to its GHL inbound-webhook URL (5xx, 429, timeouts, network errors) before it is dead with the last reason. 4xx answers other than 408/429 are final at once.',
  },
  {
    name: 'TRIGGER_RETRY_BASE_MS',
    group: 'ghl',
    schema: int(10, 600_000).default(5000),
    example: '5000',
    description:
      'Workflow triggers: first delay between forwarding attempts; doubles per attempt (equal jitter, capped at 1 h). A 429 with Retry-After waits as told.',
  },
  {
    name: 'TRIGGER_TIMEOUT_MS',
    group: 'ghl',
    schema: int(100, 120_000).default(10_000),
    example: '10000',
    description: 'Workflow triggers: one forwarding attempt (connect to the complete answer) may take this long.',
  },
  {
    name: 'EVENTS_ALLOWED_NETWORKS',
    group: 'events',
    schema: z
      .string()
      .default('')
      .refine((s) => s.split(',').every((n) => !n.trim() || isNetwork(n.trim())), {
        message: 'expected comma-separated networks in CIDR form (127.0.0.0/8, ::1/128) or addresses',
      }),
    example: '127.0.0.0/8,::1/128',
    description:
      'Event subscriptions: private, loopback, link-local and other non-public addresses an endpoint may resolve to (SSRF guard, checked at creation and at every connection). Empty: public addresses only.',
  },
  {
    name: 'EVENTS_DELIVERY_TIMEOUT_MS',
    group: 'events',
    schema: int(100, 120_000).default(10_000),
    example: '10000',
    description: 'Event subscriptions: an endpoint that has not answered within this is a failed attempt (retried).',
  },
  {
    name: 'EVENTS_ENDPOINT_CONCURRENCY',
    group: 'events',
    schema: int(1, 256).default(64),
    example: '64',
    description:
      'Event subscriptions: deliveries in flight at once per subscription per replica (also the most claimed per round: larger rounds cost fewer statements per delivery; bench:fanout delivered about 1.5–3× more at 64 than at 16).',
  },
  {
    name: 'EVENTS_BREAKER_THRESHOLD',
    group: 'events',
    schema: int(1, 10_000).default(5),
    example: '5',
    description:
      'Event subscriptions: consecutive failed attempts that open the circuit (nothing sent to the endpoint for EVENTS_BREAKER_COOLDOWN_MS, then one probe).',
  },
  {
    name: 'EVENTS_BREAKER_COOLDOWN_MS',
    group: 'events',
    schema: int(100, 3_600_000).default(30_000),
    example: '30000',
    description: 'Event subscriptions: how long an open circuit stays open before a probe delivery.',
  },
  {
    name: 'EVENTS_DISABLE_AFTER_DAYS',
    group: 'events',
    schema: z
      .string()
      .regex(/^\d+(\.\d+)?$/, { message: 'expected a number of days' })
      .transform(Number)
      .default(5),
    example: '5',
    description:
      'Event subscriptions: an endpoint failing without a single success for this many days is disabled (endpoint.disabled event, alert in GET /admin/api/event-alerts). 0 = never.',
  },
  {
    name: 'EVENTS_SECRET_OVERLAP_HOURS',
    group: 'events',
    schema: int(0, 720).default(24),
    example: '24',
    description:
      'Event subscriptions: after a secret rotation the previous secret keeps signing (both signatures in webhook-signature) this long.',
  },
  {
    name: 'EVENTS_BATCH_MS',
    group: 'events',
    schema: int(0, 1000).default(10),
    example: '10',
    description:
      'Event subscriptions: after a delivery round that was not full, wait this long before the next one, so a steady stream is sent in rounds of several events (fewer statements) at the cost of this much latency. 0 = claim again at once.',
  },
  {
    name: 'EVENTS_POLL_MS',
    group: 'events',
    schema: int(10, 60_000).default(500),
    example: '500',
    description:
      'Event subscriptions: how often each replica looks for due deliveries it was not woken for (other replicas, retries, CLI replays).',
  },
  {
    name: 'IMPORT_PAGE_SIZE',
    group: 'ghl',
    schema: int(1, 500).default(500),
    example: '500',
    description:
      'Contact import: contacts per POST /contacts/search page (GHL allows at most 500). One job and one checkpoint per page; an import request may ask for less.',
  },
  {
    name: 'IMPORT_PHONE_REGION',
    group: 'ghl',
    schema: z
      .string()
      .regex(/^[A-Z]{2}$/, { message: 'expected a two-letter country code, e.g. US' })
      .default('US'),
    example: 'US',
    description:
      'Contact import: region used to read national phone numbers as E.164 for the same-phone duplicate rule.',
  },
  {
    name: 'SANDBOX',
    group: 'sandbox',
    schema: bool.optional(),
    example: 'true',
    description:
      'Run with the built-in GHL emulator and a loopback channel. Default: true when GHL_CLIENT_ID/GHL_CLIENT_SECRET are unset.',
  },
  {
    name: 'EMULATOR_PORT',
    group: 'sandbox',
    schema: int(0, 65535).default(3001),
    example: '3001',
    description: 'Port of the built-in emulator in sandbox mode.',
  },
] as const satisfies readonly VarSpec[];
