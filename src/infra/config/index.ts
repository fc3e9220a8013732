import { existsSync } from 'node:fs';
import type { z } from 'zod';
import { VARS, type VarSpec } from './schema.js';

type Spec = (typeof VARS)[number];
export type EnvValues = { [K in Spec as K['name']]: z.output<K['schema']> };

export interface Config extends EnvValues {
  /** True when running against the built-in emulator (no real GHL credentials). */
  sandbox: boolean;
  /** PUBLIC_URL or http://localhost:PORT, without trailing slash. */
  publicUrl: string;
  /** Raw values of every secret variable that is set, for log scrubbing. */
  secretValues: string[];
}

export interface ConfigIssue {
  name: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(
      `Invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
        issues.map((i) => `  - ${i.name}: ${i.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

function describe(spec: VarSpec, raw: string | undefined, message: string): string {
  // Never echo a secret's value, even a malformed one: it might be a real secret in the wrong variable.
  const got =
    raw === undefined
      ? ''
      : spec.secret
        ? ' (value hidden)'
        : ` (got "${raw.length > 60 ? raw.slice(0, 60) + '…' : raw}")`;
  return `${message}${got}; example: ${spec.name}=${spec.example}`;
}

/**
 * Validates the environment. Every bad variable yields its own issue, all reported at once,
 * so a deploy fails with the complete list instead of one error per restart.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const issues: ConfigIssue[] = [];
  const out: Record<string, unknown> = {};
  const secretValues: string[] = [];
  for (const spec of VARS as readonly VarSpec[]) {
    const raw = env[spec.name];
    const value = raw === '' ? undefined : raw;
    const parsed = spec.schema.safeParse(value);
    if (!parsed.success) {
      const first = parsed.error.issues[0]?.message ?? 'invalid value';
      issues.push({ name: spec.name, message: describe(spec, value, value === undefined ? 'required' : first) });
      continue;
    }
    out[spec.name] = parsed.data;
    if (spec.secret && typeof value === 'string') {
      secretValues.push(value);
      // Also scrub the individual parts of composite secrets (key lists, URL passwords).
      if (spec.name === 'TOKEN_ENCRYPTION_KEYS')
        for (const p of value.split(',')) secretValues.push(p.split(':')[1] ?? '');
      if (spec.name === 'PROVIDER_DELIVERY_TOKENS') for (const t of value.split(',')) secretValues.push(t.trim());
      if (spec.name === 'DATABASE_URL') {
        try {
          const pw = decodeURIComponent(new URL(value).password);
          if (pw) secretValues.push(pw);
        } catch {
          /* already validated as a postgres URL */
        }
      }
    }
  }
  const v = out as EnvValues;

  const hasId = !!v.GHL_CLIENT_ID;
  const hasSecret = !!v.GHL_CLIENT_SECRET;
  if (hasId !== hasSecret && !issues.some((i) => i.name.startsWith('GHL_CLIENT_'))) {
    const missing = hasId ? 'GHL_CLIENT_SECRET' : 'GHL_CLIENT_ID';
    issues.push({
      name: missing,
      message: `required when ${hasId ? 'GHL_CLIENT_ID' : 'GHL_CLIENT_SECRET'} is set; set both for a real GHL app or neither for sandbox mode`,
    });
  }
  const sandbox = v.SANDBOX ?? !(hasId && hasSecret);
  if (!sandbox) {
    if (!hasId && !issues.some((i) => i.name === 'GHL_CLIENT_ID'))
      issues.push({
        name: 'GHL_CLIENT_ID',
        message: 'required when SANDBOX=false; example: GHL_CLIENT_ID=68a32958b5154ca8bbdc4d40-meh5chaj',
      });
    if (!v.TOKEN_ENCRYPTION_KEYS && !issues.some((i) => i.name === 'TOKEN_ENCRYPTION_KEYS'))
      issues.push({
        name: 'TOKEN_ENCRYPTION_KEYS',
        message:
          'required outside sandbox mode (tokens are encrypted at rest); example: TOKEN_ENCRYPTION_KEYS=k1:$(openssl rand -base64 32)',
      });
  }
  const production = env.NODE_ENV === 'production' || (hasId && hasSecret && !sandbox);
  if (v.WEBHOOK_INSECURE_SKIP_VERIFY && production) {
    issues.push({
      name: 'WEBHOOK_INSECURE_SKIP_VERIFY',
      message:
        'refused with production settings (NODE_ENV=production or real GHL credentials); unsigned webhooks would be accepted from anyone',
    });
  }
  if (
    v.DATA_RETENTION_DAYS > 0 &&
    v.DATA_RETENTION_DAYS * 86_400 <= v.WEBHOOK_TOLERANCE_SEC &&
    !issues.some((i) => i.name === 'WEBHOOK_TOLERANCE_SEC' || i.name === 'DATA_RETENTION_DAYS')
  ) {
    // Deduplication is what stops replays inside the window; its keys must outlive the window.
    issues.push({
      name: 'WEBHOOK_TOLERANCE_SEC',
      message: `expected less than DATA_RETENTION_DAYS (${v.DATA_RETENTION_DAYS} d = ${v.DATA_RETENTION_DAYS * 86_400} s): deduplication keys are pruned with the events, so a replay inside the window could be processed again`,
    });
  }
  if (v.HTTP_HEADERS_TIMEOUT_MS > v.HTTP_REQUEST_TIMEOUT_MS && !issues.some((i) => i.name.startsWith('HTTP_'))) {
    issues.push({
      name: 'HTTP_HEADERS_TIMEOUT_MS',
      message: `expected at most HTTP_REQUEST_TIMEOUT_MS (${v.HTTP_REQUEST_TIMEOUT_MS}); got ${v.HTTP_HEADERS_TIMEOUT_MS}`,
    });
  }
  if (issues.length) throw new ConfigError(issues);

  const publicUrl = (v.PUBLIC_URL ?? `http://localhost:${v.PORT}`).replace(/\/+$/, '');
  return { ...v, sandbox, publicUrl, secretValues: secretValues.filter((s) => s.length >= 4) };
}

/** Loads ./.env (if present) into process.env without overriding what is already set. */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

export { VARS };
