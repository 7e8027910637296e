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
);
