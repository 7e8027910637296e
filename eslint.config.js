import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const boundary = (message, patterns) => ({
  'no-restricted-imports': ['error', { patterns: patterns.map((group) => ({ group: [group], message })) }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', URLSearchParams: 'readonly', setImmediate: 'readonly', performance: 'readonly', fetch: 'readonly', WebSocket: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // protocol/ is a leaf; client code never imports server code.
  { files: ['protocol/**/*.ts'], rules: boundary('protocol/ is a leaf: it imports nothing from server/ or client/', ['**/server/**', '**/client/**']) },
  { files: ['client/**/*.ts'], rules: boundary('client code never imports server code', ['**/server/**']) },
  // server/ by concern: the transport is an adapter at the edge (it knows only the protocol and its own
  // types); process setup (CLI, options, startServer) sits on top and nothing below imports it, except
  // the option table, which is a leaf.
  {
    files: ['server/transport/**/*.ts'],
    rules: boundary('server/transport/ is an adapter: it imports nothing of core/, scrape/, http/, config/ or setup/', ['**/core/**', '**/scrape/**', '**/http/**', '**/config/**', '**/setup/**', '**/client/**']),
  },
  {
    files: ['server/core/**/*.ts', 'server/scrape/**/*.ts', 'server/http/**/*.ts', 'server/config/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.fixture.ts'],
    rules: boundary('process setup sits on top: only its option table may be imported from below', ['**/setup/cli*', '**/setup/start-server*', '**/setup/options*', '**/workers/**']),
  },
  // server/workers/ runs beside setup (startServer starts it): it may read the options, never the CLI or startServer.
  {
    files: ['server/workers/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: boundary('server/workers/ sits beside process setup: it imports the options, not the CLI or startServer', ['**/setup/cli*', '**/setup/start-server*']),
  },
);
