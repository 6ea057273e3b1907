import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../../src/errors';
import { Metrics } from '../../../src/observability';
import { configTable } from '../../../scripts/config-docs';
import { withConfigTable } from '../../../scripts/update-readme-config';

const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');

describe('README stays true to the code', () => {
  it('has the configuration table generated from the schema (run scripts/update-readme-config.ts)', () => {
    assert.equal(readme, withConfigTable(readme, configTable()));
  });

  it('documents every error code with its HTTP status', () => {
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      const row = readme
        .split('\n')
        .find((line) => line.startsWith('|') && line.includes(`\`${code}\``));
      assert.ok(row, `README errors table lacks ${code}`);
      assert.match(
        row,
        new RegExp(`\\b${status}\\b`),
        `README row for ${code} lacks status ${status}`,
      );
    }
  });

  it('lists every metric the proxy registers', async () => {
    const metrics = new Metrics({ modelLabelLimit: 10, defaultMetrics: false });
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length > 20);
    for (const name of names)
      assert.ok(readme.includes(`\`${name}\``), `README metrics table lacks ${name}`);
  });

  it('gives the two commands a newcomer needs, and CI runs the same test command', () => {
    assert.ok(readme.includes('./scripts/demo.sh'));
    assert.ok(readme.includes('./scripts/test-all.sh'));
    const ci = readFileSync(join(__dirname, '..', '..', '..', '.ci', 'run'), 'utf8');
    assert.ok(ci.includes('./scripts/test-all.sh'));
  });
});
