// Lint: the lib boundaries (layering, no deep imports) plus a few correctness rules.
// Formatting is Prettier's job (`npm run format:check`); nothing here is about style.
import path from 'node:path';
import tseslint from 'typescript-eslint';

const ROOT = import.meta.dirname;

// The libs from the bottom up. A lib may import only libs on a LOWER line, through their index
// (`@app/<lib>`); libs on one line do not import each other. The app, test/ and bench/ may
// import every lib's index. Because every edge points down, no cycle between libs can exist.
// A new lib must be placed here (the rule reports an unlisted lib).
const LAYERS = [
  ['core'],
  ['telemetry'],
  ['database', 'redis', 'audit'],
  ['users', 'health'],
  ['sessions'],
  ['auth'],
  ['admin', 'tools', 'identity'],
  ['contexts', 'oauth'],
  ['mcp-gateway'],
];
// Known breaks being removed on another branch (engineer "edge": tools stops importing contexts,
// the rate window moves to core). Delete each entry with its import; the list should end empty.
const PENDING = [];
const LAYER_OF = new Map(LAYERS.flatMap((libs, i) => libs.map((lib) => [lib, i])));
const below = (lib) => LAYERS.slice(0, LAYER_OF.get(lib)).flat().join(', ') || 'none';

/** Which part of the repository a file belongs to: a lib, an app, or the rest (test/, bench/, root). */
function ownerOf(file) {
  const [top, name] = path.relative(ROOT, file).split(path.sep);
  if (top === 'libs') return { kind: 'lib', name };
  if (top === 'apps') return { kind: 'app', name };
  return { kind: 'other' };
}

/** Exported for its test (scripts/lib-boundaries.test.mjs). */
export const libBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'Libs are layered and imported only through their index (@app/<lib>).' },
    schema: [],
    messages: {
      deep: "Deep import of lib '{{lib}}': import from '@app/{{lib}}' (its index.ts); export it there if it is public.",
      self: "Inside lib '{{lib}}' use relative imports, not '@app/{{lib}}' (its own index: a load-order cycle).",
      layer:
        "Lib '{{from}}' may not import '{{lib}}': it is not on a lower layer (a cycle or a layering break). " +
        '{{from}} may import: {{allowed}}. Layers are listed in eslint.config.mjs.',
      unlisted: "Lib '{{lib}}' is not placed in LAYERS in eslint.config.mjs.",
      outside: "A lib may not import '{{spec}}' from outside its own folder (apps/, test/, bench/).",
    },
  },
  create(context) {
    const file = context.filename;
    const owner = ownerOf(file);
    const pending = new Set(PENDING.filter(([f]) => path.resolve(ROOT, f) === file).map(([, spec]) => spec));
    const check = (node, spec) => {
      if (typeof spec !== 'string' || pending.has(spec)) return;
      let lib;
      let deep;
      const alias = /^@app\/([^/]+)(\/.*)?$/.exec(spec);
      if (alias) {
        [lib, deep] = [alias[1], Boolean(alias[2])];
      } else if (spec.startsWith('.')) {
        const target = ownerOf(path.resolve(path.dirname(file), spec));
        if (owner.kind === 'lib' && target.kind === 'lib' && target.name === owner.name) return;
        if (target.kind === 'lib') [lib, deep] = [target.name, true];
        else if (owner.kind === 'lib') return context.report({ node, messageId: 'outside', data: { spec } });
        else return;
      } else return;
      if (!LAYER_OF.has(lib)) return context.report({ node, messageId: 'unlisted', data: { lib } });
      if (deep) return context.report({ node, messageId: 'deep', data: { lib } });
      if (owner.kind !== 'lib') return;
      if (lib === owner.name) return context.report({ node, messageId: 'self', data: { lib } });
      if (!LAYER_OF.has(owner.name)) return context.report({ node, messageId: 'unlisted', data: { lib: owner.name } });
      if (LAYER_OF.get(lib) >= LAYER_OF.get(owner.name)) {
        context.report({ node, messageId: 'layer', data: { from: owner.name, lib, allowed: below(owner.name) } });
      }
    };
    const literal = (node) => (node?.type === 'Literal' ? node.value : undefined);
    return {
      ImportDeclaration: (n) => check(n.source, n.source.value),
      ExportNamedDeclaration: (n) => n.source && check(n.source, n.source.value),
      ExportAllDeclaration: (n) => check(n.source, n.source.value),
      ImportExpression: (n) => check(n.source, literal(n.source)),
      TSImportType: (n) => check(n.argument, literal(n.argument?.literal)),
      TSExternalModuleReference: (n) => check(n.expression, literal(n.expression)),
      // require('x'), jest.mock('x'), jest.requireActual('x')
      CallExpression: (n) => {
        const c = n.callee;
        const named = c.type === 'Identifier' ? c.name : c.type === 'MemberExpression' ? c.property.name : undefined;
        if (['require', 'mock', 'doMock', 'requireActual', 'requireMock'].includes(named)) {
          check(n.arguments[0], literal(n.arguments[0]));
        }
      },
    };
  },
};

export default tseslint.config(
  { ignores: ['dist/**', '.dist-*/**', 'coverage/**', 'node_modules/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: ROOT },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, app: { rules: { 'lib-boundaries': libBoundaries } } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      'app/lib-boundaries': 'error',
      // Correctness: each of these has caught a real bug class in async Node services.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      'no-debugger': 'error',
      'no-self-compare': 'error',
      'no-unsafe-finally': 'error',
      'no-dupe-else-if': 'error',
      'no-unreachable': 'error',
      'no-var': 'error',
      eqeqeq: ['error', 'smart'],
    },
  },
);
