import { defineConfig } from 'vitest/config';

// The console's browser suite (`npm run test:browser`): Playwright (playwright-core) driving Debian's Chromium
// (/usr/bin/chromium) against an in-process sandbox bridge. Needs the front-end built (the npm script builds it).
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
  },
});
