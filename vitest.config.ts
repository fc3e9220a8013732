import { defineConfig } from 'vitest/config';

// Default suite: runs on the embedded store (PGlite) unless TEST_STORE=postgres.
// Spec-conformance tests read ../shared and run with vitest.conformance.config.ts.
export default defineConfig({
  test: {
    // *.pg.test.ts need a PostgreSQL server (several processes on one database) and run in the
    // PostgreSQL suite (`npm run test:postgres`).
    include: process.env.TEST_STORE === 'postgres' ? ['test/**/*.test.ts'] : ['test/**/*.test.ts'],
    exclude: [
      'test/conformance/**',
      'test/browser/**',
      ...(process.env.TEST_STORE === 'postgres' ? [] : ['test/**/*.pg.test.ts']),
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Builds the console's front-end (dist/web) when it is missing.
    globalSetup: ['test/helpers/web-build.ts'],
    pool: 'forks',
    maxWorkers: 2,
  },
});
