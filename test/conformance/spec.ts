import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { expect } from 'vitest';

/**
 * Reads GHL's official OpenAPI specs at test time (never copied into the repo). Default location is
 * <repo>/../shared/ghl/spec; override with GHL_SPEC_DIR (relative paths resolve against the repo root).
 */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SPEC_DIR = resolve(repoRoot, process.env.GHL_SPEC_DIR ?? '../shared/ghl/spec');
const BASE = 'https://ghl-spec.local/';

interface Operation {
  id: string;
  file: string;
  method: string;
  path: string;
  pointer: string;
  op: {
    parameters?: { name: string; in: string; required?: boolean; schema?: { enum?: string[] } }[];
    requestBody?: { content: Record<string, unknown> };
    responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  };
}

const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

// ajv-formats is CJS with a default export; under NodeNext the callable sits on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  a: Ajv,
) => Ajv;

/**
 * Known spec defects listed in spec/SOURCE.md, patched in memory (the files are untouched):
 * ProcessMessageBodyDto.direction is declared `object` but is the string 'inbound' | 'outbound';
 * PipelinesResponseSchema.stages (opportunities) is declared an array of arrays but holds stage objects.
 */
function patchKnownDefects(file: string, doc: Record<string, unknown>): void {
  if (file === 'opportunities.json') {
    // PipelinesResponseSchema.stages is declared an array of arrays; GHL answers stage objects (as the generator patches).
    const s = (doc.components as { schemas: Record<string, { properties: Record<string, unknown> }> }).schemas;
    const p = s.PipelinesResponseSchema?.properties;
    if (p)
      p.stages = {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'name'],
          properties: { id: { type: 'string' }, name: { type: 'string' }, position: { type: 'number' } },
        },
      };
    return;
  }
  if (file !== 'conversations.json') return;
  const schemas = (doc.components as { schemas: Record<string, { properties: Record<string, unknown> }> }).schemas;
  const p = schemas.ProcessMessageBodyDto?.properties;
  if (p) p.direction = { type: 'string', enum: ['inbound', 'outbound'], default: 'outbound' };
}

class Spec {
  readonly ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  readonly ops = new Map<string, Operation>();
  private cache = new Map<string, ValidateFunction>();

  constructor() {
    addFormats(this.ajv);
    const common = JSON.parse(readFileSync(join(SPEC_DIR, 'common', 'common-schemas.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    this.ajv.addSchema({ ...common, $id: `${BASE}common/common-schemas.json` });
    for (const file of readdirSync(join(SPEC_DIR, 'apps')).filter((f) => f.endsWith('.json'))) {
      const doc = JSON.parse(readFileSync(join(SPEC_DIR, 'apps', file), 'utf8')) as Record<string, unknown>;
      patchKnownDefects(file, doc);
      this.ajv.addSchema({ ...doc, $id: `${BASE}apps/${file}` });
      const paths = doc.paths as Record<string, Record<string, Operation['op'] & { operationId?: string }>>;
      for (const [path, item] of Object.entries(paths)) {
        for (const [method, op] of Object.entries(item)) {
          if (!op.operationId) continue;
          this.ops.set(op.operationId, {
            id: op.operationId,
            file,
            method: method.toUpperCase(),
            path,
            op,
            pointer: `/paths/${esc(path)}/${method}`,
          });
        }
      }
    }
  }

  op(id: string): Operation {
    const o = this.ops.get(id);
    if (!o) throw new Error(`operation ${id} not in spec`);
    return o;
  }

  private validator(file: string, pointer: string): ValidateFunction {
    const ref = `${BASE}apps/${file}#${pointer}`;
    let v = this.cache.get(ref);
    if (!v) {
      v = this.ajv.compile({ $ref: ref });
      this.cache.set(ref, v);
    }
    return v;
  }

  requestErrors(
    id: string,
    req: { body?: unknown; contentType?: string; query?: Record<string, string>; headers: Record<string, string> },
  ): string[] {
    const o = this.op(id);
    const errs: string[] = [];
    for (const p of o.op.parameters ?? []) {
      const bag = p.in === 'header' ? lower(req.headers) : p.in === 'query' ? (req.query ?? {}) : undefined;
      if (!bag) continue;
      const v = bag[p.in === 'header' ? p.name.toLowerCase() : p.name];
      if (p.required && v === undefined) errs.push(`missing ${p.in} ${p.name}`);
      if (v !== undefined && p.schema?.enum && !p.schema.enum.includes(v))
        errs.push(`${p.name}=${v} not in ${p.schema.enum.join('|')}`);
    }
    if (o.op.requestBody) {
      const ct = req.contentType ?? 'application/json';
      if (!o.op.requestBody.content[ct]) errs.push(`content-type ${ct} not declared`);
      else {
        const v = this.validator(o.file, `${o.pointer}/requestBody/content/${esc(ct)}/schema`);
        if (!v(req.body)) errs.push(...(v.errors ?? []).map((e) => `body${e.instancePath} ${e.message ?? ''}`));
      }
    }
    return errs;
  }

  /** Validate a response against the declared schema for its status; undeclared 4xx must still be GHL-shaped. */
  responseErrors(id: string, status: number, body: unknown): string[] {
    const o = this.op(id);
    const r = o.op.responses[String(status)];
    if (!r) {
      if (status >= 400 && status < 500) return ghlErrorShape(status, body);
      return [`status ${status} not declared for ${id} (declared: ${Object.keys(o.op.responses).join(',')})`];
    }
    const schema = r.content?.['application/json']?.schema;
    const errs: string[] = [];
    if (schema) {
      const v = this.validator(o.file, `${o.pointer}/responses/${status}/content/application~1json/schema`);
      if (!v(body))
        errs.push(
          ...(v.errors ?? []).map((e) => `response${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`),
        );
    }
    if (status >= 400) errs.push(...ghlErrorShape(status, body));
    return errs;
  }
}

function lower(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

/** GHL error bodies: statusCode = HTTP status, message string (array for 422), `error` on 401/422. */
function ghlErrorShape(status: number, body: unknown): string[] {
  const b = body as { statusCode?: unknown; message?: unknown; error?: unknown } | undefined;
  const errs: string[] = [];
  if (!b || typeof b !== 'object') return ['error body is not an object'];
  if (b.statusCode !== status) errs.push(`statusCode ${String(b.statusCode)} != ${status}`);
  if (status === 422) {
    if (!Array.isArray(b.message)) errs.push('422 message must be an array');
    if (b.error !== 'Unprocessable Entity') errs.push('422 error must be "Unprocessable Entity"');
  } else if (typeof b.message !== 'string') errs.push('message must be a string');
  if (status === 401 && b.error !== 'Unauthorized') errs.push('401 error must be "Unauthorized"');
  return errs;
}

export const spec = new Spec();

export interface CallInput {
  token?: string;
  pathParams?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  form?: boolean;
  /** Override/omit the Version header (null = omit). */
  version?: string | null;
  /** Select the part of a 2xx body that the spec describes (e.g. the wrapped messages page). */
  unwrap?: (body: Record<string, unknown>) => unknown;
}

/**
 * Perform an operation over real HTTP. `valid` asserts the request conforms to the spec and the response to the
 * declared schema; `invalid` asserts a 4xx with GHL's error shape (the request itself is meant to be wrong).
 */
export async function call(base: string, id: string, input: CallInput, mode: 'valid' | 'invalid' = 'valid') {
  const o = spec.op(id);
  const versionParam = o.op.parameters?.find((p) => p.in === 'header' && p.name === 'Version');
  const version = input.version === null ? undefined : (input.version ?? versionParam?.schema?.enum?.[0]);
  const headers: Record<string, string> = {};
  if (input.token) headers.authorization = `Bearer ${input.token}`;
  if (version) headers.version = version;
  let body: string | undefined;
  let contentType: string | undefined;
  if (input.body !== undefined) {
    contentType = input.form ? 'application/x-www-form-urlencoded' : 'application/json';
    headers['content-type'] = contentType;
    body = input.form
      ? new URLSearchParams(input.body as Record<string, string>).toString()
      : JSON.stringify(input.body);
  }
  if (mode === 'valid') {
    expect(
      spec.requestErrors(id, {
        body: input.body,
        headers,
        ...(contentType ? { contentType } : {}),
        ...(input.query ? { query: input.query } : {}),
      }),
      `${id} request`,
    ).toEqual([]);
  }
  let path = o.path;
  for (const [k, v] of Object.entries(input.pathParams ?? {})) path = path.replace(`{${k}}`, encodeURIComponent(v));
  const qs = input.query ? `?${new URLSearchParams(input.query).toString()}` : '';
  const res = await fetch(`${base}${path}${qs}`, {
    method: o.method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  if (mode === 'valid') expect(res.status, `${id} status; body ${text}`).toBeLessThan(300);
  else {
    expect(res.status, `${id} should be 4xx; body ${text}`).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  }
  const checked = input.unwrap && res.status < 300 && json ? input.unwrap(json) : json;
  expect(spec.responseErrors(id, res.status, checked), `${id} ${res.status} response`).toEqual([]);
  return { status: res.status, body: json as Record<string, unknown> & { [k: string]: unknown }, headers: res.headers };
}
