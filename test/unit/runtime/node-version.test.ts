import assert from 'node:assert/strict';
import { nodeVersionProblem, REQUIRED_NODE_MAJOR } from '../../../src/node-version';

describe('the Node.js version check every entry point runs first', () => {
  it('refuses Node 20 with a message that says what to run instead', () => {
    const problem = nodeVersionProblem('20.20.2');
    assert.ok(problem !== undefined);
    assert.match(problem, /needs Node\.js >= 22 \(this is 20\.20\.2\)/);
    assert.ok(problem.includes('export PATH="$(scripts/ensure-node.sh):$PATH"'), problem);
  });

  it('accepts the supported majors', () => {
    assert.equal(REQUIRED_NODE_MAJOR, 22);
    for (const v of ['22.0.0', '24.11.1', '25.2.0']) assert.equal(nodeVersionProblem(v), undefined);
  });

  it('refuses a version it cannot read rather than guess', () => {
    assert.ok(nodeVersionProblem('') !== undefined);
  });
});
