// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

const IO_MODULES = [
  'node:fs',
  'node:fs/promises',
  'node:net',
  'node:dgram',
  'node:child_process',
  'fs',
  'net',
  'child_process',
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test-artifacts/', 'eslint.config.js', 'bin/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // Domains never depend on the CLI or the dashboard.
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/web/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['**/cli/**', '**/web/**'], message: 'domains must not import cli/ or web/' }],
        },
      ],
    },
  },
  {
    // Pure cores: no file system, sockets or processes, and nothing of system/ (the I/O edge: the
    // subprocess runner, tool checks, the state directory, atomic writes). In ruleset/ only the two
    // files that touch the live kernel (read-live.ts, load-live.ts) are edge code.
    files: [
      'src/catalog/**/*.ts',
      'src/policy/**/*.ts',
      'src/compile/**/*.ts',
      'src/audit/**/*.ts',
      'src/ruleset/**/*.ts',
    ],
    ignores: ['src/ruleset/*-live.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: IO_MODULES.map((name) => ({
            name,
            message: 'pure core: take strings and return values; do I/O at the edges',
          })),
          patterns: [
            { group: ['**/cli/**', '**/web/**'], message: 'domains must not import cli/ or web/' },
            { group: ['**/system/**', '**/lab/**'], message: 'pure core: I/O lives in system/ (and lab/)' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
      // Vitest's asymmetric matchers (expect.any) are typed any.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    // Plain JavaScript helpers (test servers, bench drivers) run outside the TypeScript project.
    files: ['**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-undef': 'off', 'no-console': 'off' },
  },
  {
    // The dashboard's browser script (web/app.js): plain JavaScript, browser globals.
    files: ['web/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'script',
      globals: { ...globals.browser },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-console': 'error' },
  },
  prettier,
);
