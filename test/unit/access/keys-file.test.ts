import assert from 'node:assert/strict';
import { ModelGlobs, parseKeysFile, sha256Hex } from '../../../src/access';

describe('keys file', () => {
  it('reads clients from YAML with hashed and plain keys, scopes, globs, quota and priority', () => {
    const hash = sha256Hex('team-a-key');
    const [a, b] = parseKeysFile(`
clients:
  - name: team-a
    keySha256: ${hash}
    scopes: [infer, read]
    models: ["resnet*", "bert-?"]
    requestsPerSecond: 50
    burst: 100
    bytesPerSecond: 1048576
    priority: high
  - name: ops
    key: [old-ops-key, new-ops-key]
    scopes: admin
`);
    assert.equal(a!.client.name, 'team-a');
    assert.deepEqual(a!.keySha256, [hash]);
    assert.deepEqual([...a!.client.scopes], ['infer', 'read']);
    assert.equal(a!.client.priority, 'high');
    assert.deepEqual(a!.client.quota, {
      requestsPerSecond: 50,
      burst: 100,
      bytesPerSecond: 1048576,
    });
    assert.equal(a!.client.models!.matches('resnet50'), true);
    assert.equal(a!.client.models!.matches('bert-x'), true);
    assert.equal(a!.client.models!.matches('bert-xl'), false);
    assert.deepEqual(b!.keySha256, [sha256Hex('old-ops-key'), sha256Hex('new-ops-key')]);
    assert.equal(b!.client.priority, 'normal');
    assert.equal(b!.client.models, undefined);
  });

  it('reads the same structure from JSON', () => {
    const [c] = parseKeysFile(
      JSON.stringify({ clients: [{ name: 'j', key: 'k', scopes: ['read'] }] }),
    );
    assert.deepEqual([...c!.client.scopes], ['read']);
  });

  it('refuses a bad file with a message naming the client and the field, never a key', () => {
    const cases: Array<[string, RegExp]> = [
      ['clients: {}', /top-level 'clients' list/],
      ['clients: [{name: a, scopes: [infer]}]', /client 'a' needs 'key' or 'keySha256'/],
      ['clients: [{name: a, key: secret-1, scopes: [write]}]', /unknown scope 'write'/],
      ['clients: [{name: a, keySha256: ABC, scopes: [read]}]', /64 lowercase hex/],
      [
        'clients: [{name: a, key: s, priority: urgent}]',
        /priority must be one of high, normal, low/,
      ],
      [
        'clients: [{name: a, key: s, requestsPerSecond: -1}]',
        /requestsPerSecond must be a positive/,
      ],
      ['clients: [{name: a, key: s, burst: 3}]', /burst needs requestsPerSecond/],
      ['clients: [{name: a, key: s, colour: red}]', /unknown field 'colour'/],
      ['clients: [{name: a, key: s}, {name: a, key: t}]', /listed twice/],
      ['clients: [{name: a, key: same-secret}, {name: b, key: same-secret}]', /share a key/],
      ['clients: [{name: "a b", key: s}]', /name must be/],
      ['clients: [ {', /not valid YAML/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseKeysFile(text),
        (err: Error) => {
          assert.match(err.message, message, text);
          assert.doesNotMatch(err.message, /same-secret|secret-1/);
          return true;
        },
      );
    }
  });

  it('model globs: * matches any run, ? one character, everything else literally', () => {
    const globs = new ModelGlobs(['a.b', 'team-*', 'v?']);
    assert.equal(globs.matches('a.b'), true);
    assert.equal(globs.matches('axb'), false);
    assert.equal(globs.matches('team-'), true);
    assert.equal(globs.matches('team-x/y'), true);
    assert.equal(globs.matches('v1'), true);
    assert.equal(globs.matches('v12'), false);
    assert.equal(globs.matches('xteam-1'), false);
  });
});
