import type { z } from 'zod';
import { unprocessable } from './errors.js';

/** Parse with zod; on failure answer GHL's 422 with class-validator-like messages. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  throw unprocessable(
    r.error.issues.map((i) => {
      const path = i.path.join('.');
      if (i.code === 'invalid_type' && i.input === undefined) return `${path} should not be empty`;
      return path ? `${path}: ${i.message}` : i.message;
    }),
  );
}
