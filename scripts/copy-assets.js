// Copies non-TypeScript files the server reads at run time (data lists, templates) into dist/.
const { cpSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const ASSETS = [];
for (const asset of ASSETS) {
  const from = join(root, asset);
  if (existsSync(from)) cpSync(from, join(root, 'dist', asset), { recursive: true });
}
