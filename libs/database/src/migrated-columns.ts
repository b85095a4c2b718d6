import type { QueryRunner } from 'typeorm';
import { MIGRATIONS } from './migrations';

/**
 * Each table's columns, in table order, as the migrations leave them: every migration's `up`
 * is replayed against a runner that only records its statements, and CREATE TABLE, ADD COLUMN
 * and DROP COLUMN are read from them. No database needed: repository specs compare their column
 * lists with this, so a migration and a repository cannot drift apart unnoticed.
 */
export async function migratedColumns(): Promise<Map<string, string[]>> {
  const statements: string[] = [];
  const recorder = { query: async (sql: string) => void statements.push(sql) } as unknown as QueryRunner;
  for (const Migration of MIGRATIONS) await new Migration().up(recorder);

  const tables = new Map<string, string[]>();
  for (const statement of statements) {
    const sql = statement.replace(/--[^\n]*/g, '');
    const created = /^\s*CREATE TABLE (?:IF NOT EXISTS )?"?(\w+)"?\s*\(([\s\S]*)\)\s*$/i.exec(sql);
    if (created) {
      tables.set(
        created[1],
        topLevelItems(created[2])
          .map((item) => /^"?(\w+)"?/.exec(item)![1])
          .filter((name) => !CONSTRAINT_WORDS.has(name.toUpperCase())),
      );
      continue;
    }
    for (const [, table, action, column] of sql.matchAll(/ALTER TABLE "?(\w+)"?\s+(ADD|DROP) COLUMN (?:IF (?:NOT )?EXISTS )?"?(\w+)"?/gi)) {
      const columns = tables.get(table) ?? [];
      tables.set(table, action.toUpperCase() === 'ADD' ? [...columns, column] : columns.filter((name) => name !== column));
    }
  }
  return tables;
}

const CONSTRAINT_WORDS = new Set(['CONSTRAINT', 'PRIMARY', 'UNIQUE', 'CHECK', 'FOREIGN', 'EXCLUDE']);

/** The comma-separated items of a column list, ignoring commas inside parentheses. */
function topLevelItems(body: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of body) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      items.push(current.trim());
      current = '';
    } else {
      current += char;
    }
  }
  if (current.trim()) items.push(current.trim());
  return items;
}
