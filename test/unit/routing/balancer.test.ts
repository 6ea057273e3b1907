import assert from 'node:assert/strict';
import { createBalancer, type BalancedServer } from '../../../src/routing/balancer';
import { seededRandom } from '../resilience/seeded-random';

interface TestServer extends BalancedServer {
  name: string;
  weight?: number;
  outstanding: number;
}

const servers = (count: number, outstanding = 0): TestServer[] =>
  Array.from({ length: count }, (_, i) => ({ name: `s${i}`, outstanding }));

function tally(picks: (TestServer | undefined)[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const server of picks) {
    assert.ok(server, 'a server was picked');
    counts.set(server.name, (counts.get(server.name) ?? 0) + 1);
  }
  return counts;
}

describe('power-of-two-choices balancer', () => {
  it('returns undefined when there is no candidate, all are excluded or none is eligible', () => {
    const balancer = createBalancer({ random: seededRandom(1) });
    const fleet = servers(3);
    assert.equal(balancer.pick([]), undefined);
    assert.equal(balancer.pick(fleet, new Set(['s0', 's1', 's2'])), undefined);
    assert.equal(
      balancer.pick(fleet, undefined, () => false),
      undefined,
    );
  });

  it('returns the only remaining server however loaded it is', () => {
    const balancer = createBalancer({ random: seededRandom(1) });
    const fleet = [
      { name: 'idle', outstanding: 0 },
      { name: 'busy', outstanding: 500 },
    ];
    assert.equal(balancer.pick(fleet, new Set(['idle']))?.name, 'busy');
    assert.equal(balancer.pick([fleet[1]!])?.name, 'busy');
  });

  it('always prefers the less loaded of two servers', () => {
    const balancer = createBalancer({ random: seededRandom(2) });
    const fleet = [
      { name: 'busy', outstanding: 10 },
      { name: 'idle', outstanding: 0 },
    ];
    for (let i = 0; i < 200; i++) assert.equal(balancer.pick(fleet)?.name, 'idle');
  });

  it('never picks the most loaded server while others are eligible, and favours the least loaded', () => {
    const balancer = createBalancer({ random: seededRandom(3) });
    const fleet = Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, outstanding: i }));
    const counts = tally(Array.from({ length: 10_000 }, () => balancer.pick(fleet)));
    assert.equal(counts.get('s9'), undefined);
    // The least loaded wins whenever it is one of the two draws: 2/10 of picks.
    const least = counts.get('s0')!;
    assert.ok(least > 1800 && least < 2200, `least loaded picked ${least} times`);
    for (let i = 1; i < 9; i++) {
      assert.ok(counts.get(`s${i - 1}`)! > counts.get(`s${i}`)!, 'lighter servers get more picks');
    }
  });

  it('never returns an excluded or ineligible server', () => {
    const balancer = createBalancer({ random: seededRandom(4) });
    const fleet = servers(6);
    fleet[0]!.outstanding = -1; // the most attractive server is the excluded one
    const exclude = new Set(['s0', 's1']);
    const eligible = (server: TestServer): boolean => server.name !== 's2';
    for (let i = 0; i < 2_000; i++) {
      const picked = balancer.pick(fleet, exclude, eligible)!;
      assert.ok(!['s0', 's1', 's2'].includes(picked.name), `picked ${picked.name}`);
    }
    const counts = tally(
      Array.from({ length: 3_000 }, () => balancer.pick(fleet, exclude, eligible)),
    );
    assert.deepEqual(
      [...counts.keys()].sort(),
      ['s3', 's4', 's5'],
      'every remaining server gets picks',
    );
  });

  it('spreads picks evenly across equal servers instead of herding onto one', () => {
    const balancer = createBalancer({ random: seededRandom(5) });
    // A stale view: loads are never updated, as when many replicas decide at once.
    const fleet = servers(10);
    const picks = 10_000;
    const counts = tally(Array.from({ length: picks }, () => balancer.pick(fleet)));
    const expected = picks / fleet.length;
    let chiSquare = 0;
    for (const server of fleet) {
      const observed = counts.get(server.name) ?? 0;
      chiSquare += (observed - expected) ** 2 / expected;
      assert.ok(observed > 850 && observed < 1150, `${server.name}: ${observed}`);
    }
    // 9 degrees of freedom: 27.9 is the 0.1% critical value.
    assert.ok(chiSquare < 27.9, `chi-square ${chiSquare.toFixed(1)}`);
  });

  it('keeps live in-flight counts far more level than random placement does', () => {
    /** Mean spread (max - min in-flight) while 40 requests come and go over 8 servers. */
    const meanSpread = (
      choose: (fleet: TestServer[], random: () => number) => TestServer,
    ): number => {
      const random = seededRandom(6);
      const fleet = servers(8);
      const inFlight: TestServer[] = [];
      let total = 0;
      let samples = 0;
      for (let step = 0; step < 10_000; step++) {
        const picked = choose(fleet, random);
        picked.outstanding++;
        inFlight.push(picked);
        if (inFlight.length > 40) {
          const done = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]!;
          done.outstanding--;
        }
        if (step >= 100) {
          const loads = fleet.map((server) => server.outstanding);
          total += Math.max(...loads) - Math.min(...loads);
          samples++;
        }
      }
      return total / samples;
    };
    const p2c = meanSpread((fleet, random) => createBalancer({ random }).pick(fleet)!);
    const uniform = meanSpread((fleet, random) => fleet[Math.floor(random() * fleet.length)]!);
    assert.ok(p2c < 0.6 * uniform, `spread ${p2c.toFixed(2)} vs random ${uniform.toFixed(2)}`);
  });

  it('sends traffic in proportion to weight under load', () => {
    const random = seededRandom(7);
    const balancer = createBalancer({ random });
    const fleet: TestServer[] = [
      { name: 'big', weight: 3, outstanding: 0 },
      { name: 'small', weight: 1, outstanding: 0 },
    ];
    const inFlight: TestServer[] = [];
    const counts = new Map<string, number>();
    for (let step = 0; step < 10_000; step++) {
      const picked = balancer.pick(fleet)!;
      picked.outstanding++;
      inFlight.push(picked);
      counts.set(picked.name, (counts.get(picked.name) ?? 0) + 1);
      if (inFlight.length > 40) {
        const done = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]!;
        done.outstanding--;
      }
    }
    const share = counts.get('big')! / 10_000;
    assert.ok(share > 0.7 && share < 0.8, `big server share ${share}`);
  });

  it('lets weight outrank a raw in-flight count', () => {
    const balancer = createBalancer({ random: seededRandom(8) });
    const fleet: TestServer[] = [
      { name: 'big', weight: 4, outstanding: 4 }, // (4 + 1) / 4 = 1.25
      { name: 'small', weight: 1, outstanding: 1 }, // (1 + 1) / 1 = 2
    ];
    for (let i = 0; i < 100; i++) assert.equal(balancer.pick(fleet)?.name, 'big');
  });

  it('replays the same picks for the same seed', () => {
    const fleet = servers(7);
    const sequence = (seed: number): string[] => {
      const balancer = createBalancer({ random: seededRandom(seed) });
      return Array.from({ length: 50 }, () => balancer.pick(fleet)!.name);
    };
    assert.deepEqual(sequence(42), sequence(42));
    assert.notDeepEqual(sequence(42), sequence(43));
  });
});
