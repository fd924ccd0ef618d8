// ESLint over the TypeScript and JavaScript sources (docs/contributing.md says why these tools).
// The rules are the recommended sets of ESLint and typescript-eslint: they find bugs (unused
// variables, a caught error rethrown without its cause, expressions that do nothing), not
// matters of taste. Layout is prettier's (.prettierrc.json); max-len holds every line to its
// width, 120 columns: prettier wraps code but not comments, and cannot wrap a long string,
// template or regular expression, which max-len lets run past the width.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const node = Object.fromEntries(
  [
    'process',
    'Buffer',
    'console',
    'require',
    'module',
    'exports',
    '__dirname',
    '__filename',
    'global',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'clearImmediate',
    'queueMicrotask',
    'URL',
    'TextEncoder',
    'TextDecoder',
    'performance',
    'structuredClone',
    'AbortController',
    'SharedArrayBuffer',
    'Atomics',
    'WeakRef',
    'FinalizationRegistry',
    'globalThis',
  ].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'build-native/', 'prebuilds/', 'gpu-bundle/', '.deps/', 'runs/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: node },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A leading _ marks a parameter or a destructured field left out on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      'max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true },
      ],
    },
  },
  {
    // CommonJS scripts (bin/, scripts/*.js, jest.config.js): require is how they import.
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
