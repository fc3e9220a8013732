import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Field names whose values are never logged, wherever they appear. */
const SECRET_KEYS = [
  'authorization',
  'access_token',
  'refresh_token',
  'accessToken',
  'refreshToken',
  'client_secret',
  'clientSecret',
  'apiKey',
  'api_key',
  'password',
  'secret',
  'token',
];
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  // top level and up to two levels deep (pino's wildcard matches exactly one level)
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
];

/**
 * Token-shaped strings (JWTs, Cast keys, whsec_ secrets, Bearer values) are masked in every
 * line as a last line of defence, together with the configured secret values.
 */
const TOKEN_PATTERNS = [
  /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
  /\bcast_(?:test_)?[0-9a-f]{16,}/g,
  /\bwhsec_[A-Za-z0-9+/=]{8,}/g,
  /\bwf_[A-Za-z0-9_-]{20,}/g,
  /(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g,
];

const dynamicSecrets = new Set<string>();

/** Registers a secret learned at run time (e.g. a token just issued) for scrubbing. */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 8) dynamicSecrets.add(value);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function scrub(line: string, secrets: readonly string[]): string {
  let out = line;
  for (const s of secrets) if (s && out.includes(s)) out = out.split(s).join('[REDACTED]');
  for (const s of dynamicSecrets) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  for (const re of TOKEN_PATTERNS)
    out = out.replace(re, (m, p1: unknown) => (typeof p1 === 'string' ? `${p1}[REDACTED]` : '[REDACTED]'));
  // JSON-escaped forms of secrets (e.g. inside an error message string).
  for (const s of secrets) {
    const j = JSON.stringify(s).slice(1, -1);
    if (j !== s && out.includes(j)) out = out.replace(new RegExp(escapeRe(j), 'g'), '[REDACTED]');
  }
  return out;
}

/**
 * Path segments that are secrets (the provider Delivery URL's token, a workflow webhook's token) are masked wherever
 * a URL is logged or echoed.
 */
const SECRET_PATH = /(\/webhooks\/(?:ghl\/provider|workflow)\/)[^/?#]+/g;

export function redactUrl(url: string): string {
  return url.replace(SECRET_PATH, '$1[REDACTED]');
}

/** Fastify's request serializer, with the URL's secret segments masked. */
function reqSerializer(req: {
  method?: string;
  url?: string;
  headers?: Record<string, unknown>;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}) {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

export interface LoggerOptions {
  level?: string;
  secrets?: readonly string[];
  destination?: DestinationStream;
  name?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const secrets = opts.secrets ?? [];
  return pino(
    {
      name: opts.name ?? 'ghl-bridge',
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: { streamWrite: (s) => scrub(s, secrets) },
      serializers: { err: pino.stdSerializers.err, req: reqSerializer },
    },
    opts.destination,
  );
}
