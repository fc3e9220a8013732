import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'generated' ? [] : files(p);
    return /\.(ts|md)$/.test(e.name) ? [p] : [];
  });
}

const sources = [...['src', 'test', 'bench', 'scripts', 'docs'].flatMap(files), 'README.md'];
const anchors = new Set(
  [...readFileSync('docs/ghl-behaviour.md', 'utf8').matchAll(/<a id="([a-z0-9-]+)"><\/a>/g)].map((m) => m[1]),
);

describe('docs/ghl-behaviour.md', () => {
  it('has every section the code cites', () => {
    const cited = sources.flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/ghl-behaviour\.md#([a-z0-9-]+)/g)].map((m) => `${f}#${m[1]}`),
    );
    expect(cited.length).toBeGreaterThan(20);
    expect(cited.filter((c) => !anchors.has(c.split('#')[1]!))).toEqual([]);
  });

  it('is what comments cite, not a file outside the repository', () => {
    const outside = sources.filter(
      (f) => f !== 'test/foundation/docs.test.ts' && /FACTS(\.md| §)/.test(readFileSync(f, 'utf8')),
    );
    expect(outside).toEqual([]);
  });
});
