/**
 * Prints the configuration table for README.md from the convict schema, so
 * the docs cannot drift from the code (a test compares them).
 * Run: npx tsx scripts/config-docs.ts
 */
import { buildSchema } from '../src/config';

interface SchemaNode {
  doc?: string;
  env?: string;
  default?: unknown;
  format?: unknown;
  _cvtProperties?: Record<string, SchemaNode>;
}

function rows(node: Record<string, SchemaNode>, path: string[] = []): string[][] {
  const out: string[][] = [];
  for (const [key, value] of Object.entries(node)) {
    if (value._cvtProperties) out.push(...rows(value._cvtProperties, [...path, key]));
    else {
      const def = value.default === '' ? '(empty)' : String(value.default);
      out.push([
        `\`${value.env ?? ''}\``,
        `\`${[...path, key].join('.')}\``,
        `\`${def}\``,
        value.doc ?? '',
      ]);
    }
  }
  return out;
}

export function configTable(): string {
  const schema = buildSchema({ env: {}, args: [] }).getSchema() as unknown as {
    _cvtProperties: Record<string, SchemaNode>;
  };
  const lines = ['| env | file key | default | meaning |', '|---|---|---|---|'];
  for (const r of rows(schema._cvtProperties))
    lines.push(`| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  return lines.join('\n');
}

if (require.main === module) process.stdout.write(`${configTable()}\n`);
