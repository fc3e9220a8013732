import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

// Layers, lowest first (README "Architecture"). A folder may import its own layer's peers only where
// listed and anything below; never above. Feature modules reach each other through services or
// the functions they export, never through the composition root (src/modules.ts, sandbox, cli).
const composition = ['**/modules.js', '**/sandbox/**', '**/cli/**'];
const features = ['**/webhooks/**', '**/installations/**', '**/provider/**', '**/dashboard/**'];
const kernel = ['**/app.js'];
const above = (...groups) => ({ patterns: [{ group: groups.flat(), message: 'a lower layer imports nothing from a higher one (see README "Architecture")' }] });

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'src/ghl/generated/'] },
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
  // Foundation: config, log, observability, crypto, db, http, queue, ghl, channels, emulator.
  {
    files: ['src/{config,log,observability,crypto,db,http,queue,ghl,channels,emulator}/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', above(kernel, features, composition)] },
  },
  // The database layer knows no table owner: modules hand it their migrations.
  {
    files: ['src/db/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', above(kernel, features, composition, ['**/queue/**', '**/ghl/**', '**/http/**', '**/channels/**', '**/emulator/**', '**/crypto/**'])] },
  },
  // The kernel (src/app.ts) and the feature modules: nothing from the composition root.
  {
    files: ['src/app.ts', 'src/{webhooks,installations,provider,dashboard}/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', above(composition)] },
  },
  { files: ['src/app.ts'], rules: { '@typescript-eslint/no-restricted-imports': ['error', above(features, composition)] } },
);
