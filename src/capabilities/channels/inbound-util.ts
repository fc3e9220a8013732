import type { z } from 'zod';
import { ChannelInputError } from './types.js';
import { tryJson } from './util.js';

/** Compact, precise zod error text: `events[1].status: Invalid option: expected one of …; from: …`. */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.reduce<string>(
        (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
        '',
      );
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}

export function parseJsonBody(rawBody: Buffer, what: string): unknown {
  if (rawBody.length === 0) throw new ChannelInputError(`${what}: empty body`);
  const parsed = tryJson(rawBody.toString('utf8'));
  if (parsed === undefined) throw new ChannelInputError(`${what}: body is not valid JSON`);
  return parsed;
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ChannelInputError(`${what}: ${describeZodError(r.error)}`);
  return r.data;
}
