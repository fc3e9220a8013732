import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

// Layers, lowest first (README "Architecture"): infra → platform → capabilities → console → composition.
// A folder imports its own layer's peers only where listed and anything below; never above. Capabilities reach
// each other through the functions they export, never through the composition root (src/modules.ts, sandbox, cli).
const composition = ['**/modules.js', '**/sandbox/**', '**/cli/**'];
const kernel = ['**/app.js'];
const platform = ['**/platform/**'];
const capabilities = ['**/capabilities/**'];
const consoleUi = ['**/console/**'];
const emulator = ['**/emulator/**'];
const above = (...groups) => ({
  patterns: [
    { group: groups.flat(), message: 'a lower layer imports nothing from a higher one (see README "Architecture")' },
  ],
});
const forbid = (...groups) => ({ '@typescript-eslint/no-restricted-imports': ['error', above(...groups)] });

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'src/platform/ghl/generated/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  { files: ['bench/**', 'scripts/**', 'src/cli/**', 'test/**'], rules: { 'no-console': 'off' } },
  // No import cycles in src, type-only imports included (they still couple the two files).
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createNodeResolver({ extensionAlias: { '.js': ['.ts', '.js'] } })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  // Infrastructure (config, log, observability, crypto, db, queue, http, util) and the emulator: no bridge feature.
  {
    files: ['src/infra/**/*.ts', 'src/emulator/**/*.ts'],
    rules: forbid(kernel, platform, capabilities, consoleUi, composition),
  },
  { files: ['src/infra/**/*.ts'], rules: forbid(kernel, platform, capabilities, consoleUi, composition, emulator) },
  // The database layer knows no table owner: modules hand it their migrations.
  {
    files: ['src/infra/db/**/*.ts'],
    rules: forbid(kernel, platform, capabilities, consoleUi, composition, emulator, [
      '**/queue/**',
      '**/http/**',
      '**/crypto/**',
    ]),
  },
  // The GHL platform: the client and rate limiter know no module; installations and intake build on them.
  { files: ['src/platform/**/*.ts'], rules: forbid(capabilities, consoleUi, composition, emulator) },
  {
    files: ['src/platform/ghl/**/*.ts'],
    rules: forbid(kernel, capabilities, consoleUi, composition, emulator, ['**/installations/**', '**/webhooks/**']),
  },
  // Capabilities build on the platform; channel adapters know no capability.
  { files: ['src/capabilities/**/*.ts'], rules: forbid(consoleUi, composition, emulator) },
  {
    files: ['src/capabilities/channels/**/*.ts'],
    rules: forbid(kernel, platform, consoleUi, composition, emulator, ['**/provider/**']),
  },
  { files: ['src/console/**/*.ts'], rules: forbid(composition, emulator) },
  // The kernel (src/app.ts) knows only infrastructure.
  { files: ['src/app.ts'], rules: forbid(platform, capabilities, consoleUi, composition, emulator) },
);
