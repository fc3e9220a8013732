import { defineConfig } from 'vitest/config';

// Default suite: runs on the embedded store (PGlite) unless TEST_STORE=postgres.
// Spec-conformance tests read ../shared and run with vitest.conformance.config.ts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/conformance/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
