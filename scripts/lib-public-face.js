#!/usr/bin/env node
// Each lib's index.ts is its public face: it exports, by name, exactly what code outside the lib
// (other libs, apps/, test/, bench/) imports from `@app/<lib>`. This script computes that set
// with the TypeScript compiler and prints, per lib, what the index exports that nobody outside
// uses and what is used but not exported. `--write` rewrites the index files: one
// `export { ... } from './file'` (and `export type { ... }`) per declaring file, in the order
// the current index loads them (the order matters where two libs load each other).
//   node scripts/lib-public-face.js [--write] [lib ...]
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..');
const write = process.argv.includes('--write');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));

const configFile = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile);
const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
const program = ts.createProgram(parsed.fileNames, parsed.options);
const checker = program.getTypeChecker();

const libsDir = path.join(root, 'libs');
const libs = fs.readdirSync(libsDir).filter((d) => fs.existsSync(path.join(libsDir, d, 'src', 'index.ts')));
const libOf = (file) => {
  const rel = path.relative(libsDir, file);
  return rel.startsWith('..') ? undefined : rel.split(path.sep)[0];
};

// 1. Names imported from '@app/<lib>' by files outside that lib.
const used = Object.fromEntries(libs.map((l) => [l, new Map()])); // lib -> name -> [files]
const note = (lib, name, file) => {
  if (!used[lib]) return;
  const files = used[lib].get(name) ?? [];
  files.push(path.relative(root, file));
  used[lib].set(name, files);
};
const targetLib = (spec) => {
  const m = /^@app\/([a-z-]+)$/.exec(spec);
  return m ? m[1] : undefined;
};
const unhandled = [];
for (const sf of program.getSourceFiles()) {
  if (sf.isDeclarationFile || sf.fileName.includes('node_modules')) continue;
  const own = libOf(sf.fileName);
  const visit = (node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const lib = targetLib(node.moduleSpecifier.text);
      if (lib && lib !== own) {
        if (ts.isImportDeclaration(node)) {
          const clause = node.importClause;
          if (clause?.name) unhandled.push(`${sf.fileName}: default import from ${lib}`);
          const nb = clause?.namedBindings;
          if (nb && ts.isNamedImports(nb)) for (const e of nb.elements) note(lib, (e.propertyName ?? e.name).text, sf.fileName);
          else if (nb) unhandled.push(`${sf.fileName}: namespace import from ${lib}`);
        } else if (node.exportClause && ts.isNamedExports(node.exportClause)) {
          for (const e of node.exportClause.elements) note(lib, (e.propertyName ?? e.name).text, sf.fileName);
        } else unhandled.push(`${sf.fileName}: export * from ${lib}`);
      }
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      const lib = arg && ts.isStringLiteral(arg) ? targetLib(arg.text) : undefined;
      if (lib && lib !== own) {
        // const { a, b } = await import('@app/lib')
        let p = node.parent;
        if (p && ts.isAwaitExpression(p)) p = p.parent;
        if (p && ts.isVariableDeclaration(p) && ts.isObjectBindingPattern(p.name)) {
          for (const e of p.name.elements) note(lib, (e.propertyName ?? e.name).getText(sf), sf.fileName);
        } else unhandled.push(`${sf.fileName}: import('@app/${lib}') not destructured`);
      }
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      const lib = targetLib(node.argument.literal.text);
      if (lib && lib !== own) {
        if (node.qualifier) note(lib, ts.isIdentifier(node.qualifier) ? node.qualifier.text : node.qualifier.left.getText(sf), sf.fileName);
        else unhandled.push(`${sf.fileName}: typeof import('@app/${lib}')`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

// 2. Where each name is declared, and under which name its file exports it.
const moduleSymbolOf = (file) => checker.getSymbolAtLocation(program.getSourceFile(file));
const resolve = (s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
const rel = (from, to) => {
  let r = path
    .relative(path.dirname(from), to)
    .replace(/\\/g, '/')
    .replace(/\.ts$/, '')
    .replace(/\/index$/, '');
  return r.startsWith('.') ? r : `./${r}`;
};

const written = [];
let problems = unhandled.length;
for (const u of unhandled) console.error(`unhandled: ${u}`);
for (const lib of libs) {
  if (only.length && !only.includes(lib)) continue;
  const indexFile = path.join(libsDir, lib, 'src', 'index.ts');
  const indexSf = program.getSourceFile(indexFile);
  const exported = new Map(checker.getExportsOfModule(moduleSymbolOf(indexFile)).map((s) => [s.name, s]));
  const wanted = [...used[lib].keys()].sort();
  const missing = wanted.filter((n) => !exported.has(n));
  const unused = [...exported.keys()].filter((n) => !used[lib].has(n)).sort();
  console.log(`${lib}: index exports ${exported.size}, used outside ${wanted.length}, unused ${unused.length}`);
  if (unused.length) console.log(`  unused: ${unused.join(', ')}`);
  if (missing.length) {
    problems++;
    console.log(`  USED BUT NOT EXPORTED: ${missing.map((n) => `${n} (${used[lib].get(n)[0]})`).join(', ')}`);
  }
  if (!write || missing.length) continue;

  // Order: position of the index statement that brought the name in, then the declaring file.
  const statementFiles = indexSf.statements
    .filter((s) => ts.isExportDeclaration(s) && s.moduleSpecifier)
    .map((s) => moduleSymbolOf(checker.getSymbolAtLocation(s.moduleSpecifier).valueDeclaration.fileName));
  const groups = new Map(); // declaring file -> { order, values: [], types: [] }
  for (const name of wanted) {
    const target = resolve(exported.get(name));
    const decl = target.declarations?.[0];
    if (!decl) throw new Error(`${lib}: ${name} has no declaration`);
    const declFile = decl.getSourceFile().fileName;
    // The name under which the declaring file exports it (usually the same).
    const fileExports = checker.getExportsOfModule(moduleSymbolOf(declFile));
    const own = fileExports.find((s) => resolve(s) === target);
    if (!own) throw new Error(`${lib}: ${name} is not exported by ${declFile}`);
    const order = statementFiles.findIndex((m) => checker.getExportsOfModule(m).some((s) => resolve(s) === target));
    const g = groups.get(declFile) ?? { order, values: [], types: [] };
    g.order = Math.min(g.order, order);
    const spec = own.name === name ? name : `${own.name} as ${name}`;
    (target.flags & ts.SymbolFlags.Value ? g.values : g.types).push(spec);
    groups.set(declFile, g);
  }
  const leading = indexSf.getFullText().slice(0, indexSf.statements[0]?.getStart(indexSf) ?? 0);
  const lines = [...groups.entries()]
    .map(([file, g], i) => ({ file, ...g, i }))
    .sort((a, b) => a.order - b.order || a.i - b.i)
    .flatMap((g) => [
      ...(g.values.length ? [`export { ${g.values.join(', ')} } from '${rel(indexFile, g.file)}';`] : []),
      ...(g.types.length ? [`export type { ${g.types.join(', ')} } from '${rel(indexFile, g.file)}';`] : []),
    ]);
  fs.writeFileSync(indexFile, `${leading}${lines.join('\n')}\n`);
  written.push(indexFile);
}
if (written.length) require('child_process').execFileSync('npx', ['prettier', '--write', ...written], { cwd: root, stdio: 'ignore' });
process.exit(problems ? 1 : 0);
