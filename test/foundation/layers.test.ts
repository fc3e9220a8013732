import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCycles, importGraph } from '../../scripts/check-cycles.js';

describe('import cycles (npm run lint)', () => {
  it('finds a cycle made only of type imports and re-exports', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ghl-bridge-cycles-'));
    writeFileSync(join(dir, 'a.ts'), "import type { B } from './b.js';\nexport type A = { b: B };\n");
    writeFileSync(join(dir, 'b.ts'), "export { c } from './c.js';\nexport type B = number;\n");
    writeFileSync(join(dir, 'c.ts'), "import type { A } from './a.js';\nexport const c = (a: A) => a;\n");
    writeFileSync(join(dir, 'd.ts'), "import { c } from './c.js';\nexport const d = c;\n");
    const cycles = findCycles(importGraph(dir));
    expect(cycles).toEqual([[join(dir, 'a.ts'), join(dir, 'b.ts'), join(dir, 'c.ts')]]);
  });

  it('src has none', () => {
    expect(findCycles(importGraph('src'))).toEqual([]);
  });
});
