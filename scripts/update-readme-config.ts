/**
 * Rewrites the configuration table in README.md from the schema.
 * Run: npx tsx scripts/update-readme-config.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configTable } from './config-docs';

const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

export function withConfigTable(readme: string, table: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error('README.md has no config-table markers');
  return `${readme.slice(0, a + START.length)}\n${table}\n${readme.slice(b)}`;
}

if (require.main === module) {
  const path = join(__dirname, '..', 'README.md');
  writeFileSync(path, withConfigTable(readFileSync(path, 'utf8'), configTable()));
}
