import { strict as assert } from 'node:assert';
import { rendezvousPick, SequenceAffinity } from '../../../src/routing';

const servers = (names: string[], weight = 1) => names.map((name) => ({ name, weight }));

describe('rendezvous hashing of sequences', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => `model\u0000${i}`);

  it('gives the same server for a key whatever the order the servers are listed in', () => {
    const a = servers(['t0', 't1', 't2', 't3']);
    const b = [...a].reverse();
    for (const key of keys.slice(0, 200))
      assert.equal(rendezvousPick(a, key)!.name, rendezvousPick(b, key)!.name);
  });

  it('spreads keys evenly over equal servers and in proportion to weights', () => {
    const count = (list: Array<{ name: string; weight: number }>) => {
      const n = new Map<string, number>();
      for (const key of keys) {
        const s = rendezvousPick(list, key)!.name;
        n.set(s, (n.get(s) ?? 0) + 1);
      }
      return n;
    };
    const even = count(servers(['t0', 't1', 't2']));
    for (const n of even.values()) assert.ok(n > 850 && n < 1150, `share ${n} of 3000`);
    const weighted = count([
      { name: 'big', weight: 2 },
      { name: 'small', weight: 1 },
    ]);
    const ratio = weighted.get('big')! / weighted.get('small')!;
    assert.ok(ratio > 1.7 && ratio < 2.3, `2:1 weights gave ${ratio.toFixed(2)}:1`);
  });

  it('moves only the keys of a server that leaves, and only to the one that joins the keys it wins', () => {
    const four = servers(['t0', 't1', 't2', 't3']);
    const three = four.filter((s) => s.name !== 't3');
    for (const key of keys) {
      const before = rendezvousPick(four, key)!.name;
      const after = rendezvousPick(three, key)!.name;
      if (before !== 't3') assert.equal(after, before, `key ${key} moved without cause`);
    }
  });

  it('skips servers that are not eligible, and finds none when none is', () => {
    const list = servers(['t0', 't1']);
    const key = keys[0]!;
    const first = rendezvousPick(list, key)!.name;
    const other = first === 't0' ? 't1' : 't0';
    assert.equal(rendezvousPick(list, key, (s) => s.name !== first)!.name, other);
    assert.equal(
      rendezvousPick(list, key, () => false),
      undefined,
    );
  });
});

describe('SequenceAffinity pins', () => {
  it('keeps a pin alive while requests come within the idle time and drops it after that much silence', () => {
    let now = 0;
    const pins = new SequenceAffinity(1000, 100, () => now);
    pins.set('m', '7', 't1');
    for (now = 800; now <= 4000; now += 800) assert.equal(pins.get('m', '7'), 't1', `at ${now} ms`);
    now = 4000 + 999;
    assert.equal(pins.get('m', '7'), 't1', 'just inside the idle time');
    now += 1000;
    assert.equal(pins.get('m', '7'), undefined, 'idle for the whole idle time');
  });

  it('ends a pin at sequence_end and evicts the least recently used one when full', () => {
    let now = 0;
    const pins = new SequenceAffinity(10_000, 2, () => now);
    pins.set('m', '1', 't0');
    pins.set('m', '2', 't1');
    now = 5;
    pins.get('m', '1');
    pins.set('m', '3', 't2');
    assert.equal(pins.get('m', '1'), 't0', 'recently used: kept');
    assert.equal(pins.get('m', '2'), undefined, 'least recently used: evicted');
    pins.end('m', '3');
    assert.equal(pins.get('m', '3'), undefined);
    assert.equal(pins.size, 1);
  });
});
