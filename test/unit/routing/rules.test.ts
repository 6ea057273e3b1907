import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  RoutingRules,
  matchGlob,
  parseRoutingRules,
  validateRoutingRules,
} from '../../../src/routing/rules';

describe('routing rules', () => {
  describe('parseRoutingRules', () => {
    it('parses pattern=group entries in order, trimming whitespace', () => {
      assert.deepEqual(parseRoutingRules(' llama*=vllm , bert-?=onnx '), [
        { pattern: 'llama*', groups: ['vllm'] },
        { pattern: 'bert-?', groups: ['onnx'] },
      ]);
    });

    it('reads alternative groups separated by |', () => {
      assert.deepEqual(parseRoutingRules('mixtral*=vllm | trtllm'), [
        { pattern: 'mixtral*', groups: ['vllm', 'trtllm'] },
      ]);
    });

    it('reads an empty or blank text as no rules', () => {
      assert.deepEqual(parseRoutingRules(''), []);
      assert.deepEqual(parseRoutingRules('   '), []);
    });

    const rejects: [string, string, RegExp][] = [
      ['a missing =', 'llama*=vllm,bert', /TRITON_ROUTES entry 2 "bert": expected pattern=group/],
      ['an empty pattern', '=vllm', /entry 1 "=vllm": pattern is empty/],
      ['an empty group', 'llama*=', /entry 1 "llama\*=": group name is empty/],
      ['an empty alternative', 'llama*=vllm|', /group name is empty/],
      ['a stray comma', 'llama*=vllm,,bert*=onnx', /entry 2 "": empty entry/],
      ['a trailing comma', 'llama*=vllm,', /entry 2 "": empty entry/],
      ['a space inside a pattern', 'llama 3=vllm', /entry 1 .*pattern may not contain whitespace/],
      ['a second =', 'a=b=c', /entry 1 .*group "b=c" must start with a letter or digit/],
      ['a bad group character', 'llama*=vllm/x', /group "vllm\/x"/],
      [
        'a repeated pattern',
        'llama*=vllm,bert*=onnx,llama*=onnx',
        /entry 3 .*already used by entry 1/,
      ],
      [
        'an entry after a catch-all',
        '*=onnx,llama*=vllm',
        /entry 2 .*unreachable, entry 1 \("\*"\)/,
      ],
    ];
    for (const [what, text, message] of rejects) {
      it(`rejects ${what}, naming the entry`, () => {
        assert.throws(() => parseRoutingRules(text), message);
      });
    }

    it('names the source it was given in errors', () => {
      assert.throws(
        () => parseRoutingRules('x', 'routing.rules'),
        /^Error: routing\.rules entry 1/,
      );
    });
  });

  describe('validateRoutingRules', () => {
    it('applies the same checks to rules written in the config file', () => {
      assert.throws(
        () => validateRoutingRules([{ pattern: 'llama*', groups: [] }], 'fleet.routes'),
        /fleet\.routes entry 1 .*group name is empty/,
      );
      assert.doesNotThrow(() => validateRoutingRules([{ pattern: 'llama*', groups: ['vllm'] }]));
    });
  });

  describe('RoutingRules.groupsFor', () => {
    const rules = new RoutingRules(
      parseRoutingRules('llama-3-70b=big,llama*=vllm,bert-?=onnx,*-trt=trt|onnx'),
    );

    it('answers with the groups of the first matching rule', () => {
      assert.deepEqual(rules.groupsFor('llama-3-70b'), ['big']);
      assert.deepEqual(rules.groupsFor('llama-3-8b'), ['vllm']);
      assert.deepEqual(rules.groupsFor('bert-a'), ['onnx']);
      assert.deepEqual(rules.groupsFor('resnet-trt'), ['trt', 'onnx']);
    });

    it('answers undefined (any group) when no rule matches', () => {
      assert.equal(rules.groupsFor('bert-ab'), undefined, '? matches exactly one character');
      assert.equal(rules.groupsFor('resnet50'), undefined);
      assert.equal(rules.groupsFor('LLAMA-3'), undefined, 'matching is case-sensitive');
    });

    it('gives the same answer from its cache as on first computation', () => {
      const cached = new RoutingRules(parseRoutingRules('a*=x'));
      const first = cached.groupsFor('abc');
      assert.equal(cached.groupsFor('abc'), first);
      assert.equal(cached.groupsFor('zzz'), undefined);
      assert.equal(cached.groupsFor('zzz'), undefined);
    });

    it('keeps the cache within its bound while answering correctly for many model names', () => {
      const bounded = new RoutingRules(parseRoutingRules('m1*=one'), { cacheSize: 8 });
      for (let i = 0; i < 1_000; i++) {
        const expected = String(i).startsWith('1') ? ['one'] : undefined;
        assert.deepEqual(bounded.groupsFor(`m${i}`), expected, `m${i}`);
        assert.ok(bounded.cachedModels <= 8);
      }
      assert.equal(bounded.cachedModels, 8);
    });

    it('does not let callers change the rules through the answers', () => {
      const groups = rules.groupsFor('llama-3-8b') as string[];
      assert.throws(() => groups.push('evil'));
      assert.deepEqual(rules.groupsFor('llama-3-8b'), ['vllm']);
    });

    it('rejects invalid rule objects and cache sizes at construction', () => {
      assert.throws(() => new RoutingRules([{ pattern: '', groups: ['g'] }]), /pattern is empty/);
      assert.throws(() => new RoutingRules([], { cacheSize: 0 }), /cacheSize/);
    });
  });

  describe('matchGlob', () => {
    const cases: [string, string, boolean][] = [
      ['*', '', true],
      ['*', 'anything', true],
      ['', '', true],
      ['', 'a', false],
      ['abc', 'abc', true],
      ['abc', 'abcd', false],
      ['a*', 'a', true],
      ['a*c', 'abbbc', true],
      ['a*c', 'abbbd', false],
      ['?', '', false],
      ['a?c', 'abc', true],
      ['*a*b*', 'xxaxxbxx', true],
      ['*a*b*', 'xxbxxaxx', false],
      ['a*', 'a*bc', true],
      ['**x', 'x', true],
    ];
    for (const [pattern, text, expected] of cases) {
      it(`${expected ? 'matches' : 'does not match'} "${text}" against "${pattern}"`, () => {
        assert.equal(matchGlob(pattern, text), expected);
      });
    }

    it('agrees with a regular-expression translation on random patterns', () => {
      const toRegExp = (pattern: string): RegExp =>
        new RegExp(`^${pattern.replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
      const pattern = fc.stringMatching(/^[ab*?]{0,8}$/);
      const text = fc.stringMatching(/^[ab]{0,12}$/);
      fc.assert(
        fc.property(pattern, text, (p, t) => matchGlob(p, t) === toRegExp(p).test(t)),
        { numRuns: 2_000 },
      );
    });

    it('settles patterns with many stars against long names without backtracking blow-up', () => {
      const name = 'a'.repeat(5_000);
      assert.equal(matchGlob('a*a*a*a*a*a*a*a*b', name), false);
      assert.equal(matchGlob('a*a*a*a*a*a*a*a*a', name), true);
    });
  });
});
