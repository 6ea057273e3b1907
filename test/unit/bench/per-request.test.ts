import assert from 'node:assert/strict';
import { formatPerRequest, parseStraceSummary, type PerRequest } from '../../../bench/per-request';

// What `strace -c -f -p PID` wrote for kserve/rest-proxy over 2,000 requests
// (strace 6.1): rows with and without an errors column, then the total row.
const STRACE_SUMMARY = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 41.42    1.554787        1844       843           nanosleep
 39.66    1.488885       78362        19           futex
  8.86    0.332507          41      8074      4047 read
  6.64    0.249245          52      4748           write
  3.39    0.127316          48      2636           epoll_pwait
  0.01    0.000257         128         2         1 accept4
------ ----------- ----------- --------- --------- ----------------
100.00    3.754056         229     16340      4048 total
`;

function row(process: string, syscalls?: Map<string, number>): PerRequest {
  return {
    process,
    requests: 3000,
    p50Us: 1620.4,
    userUs: 997.2,
    systemUs: 203,
    busiestThreadUs: 1067,
    voluntary: 2.79,
    involuntary: 0.33,
    minorFaults: 1.97,
    threads: 7,
    syscalls,
  };
}

describe('bench per-request counts', function () {
  it('reads calls per syscall from strace -c, with or without an errors column, leaving out the total', function () {
    const calls = parseStraceSummary(STRACE_SUMMARY);
    assert.deepEqual(
      [...calls],
      [
        ['nanosleep', 843],
        ['futex', 19],
        ['read', 8074],
        ['write', 4748],
        ['epoll_pwait', 2636],
        ['accept4', 2],
      ],
    );
  });

  it('finds no syscalls in text that is not an strace summary', function () {
    assert.equal(
      parseStraceSummary('strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n').size,
      0,
    );
  });

  it('puts one column per process and lists syscalls made at least once per 20 requests', function () {
    const table = formatPerRequest([
      row(
        'proxy',
        new Map([
          ['read', 2.01],
          ['writev', 2],
          ['munmap', 0.01],
        ]),
      ),
      row(
        'rest-proxy',
        new Map([
          ['read', 4.04],
          ['write', 2.29],
        ]),
      ),
    ]);
    const lines = table.split('\n');
    assert.match(lines[0]!, /per request, c=1\s+proxy\s+rest-proxy$/);
    assert.ok(
      lines.some((l) => /^CPU user \+ system, us\s+997 \+ 203\s+997 \+ 203$/.test(l)),
      table,
    );
    assert.ok(
      lines.some((l) => /^ {2}writev\s+2\.00\s+0\.00$/.test(l)),
      table,
    );
    assert.ok(
      lines.some((l) => /^ {2}write\s+0\.00\s+2\.29$/.test(l)),
      table,
    );
    assert.ok(
      lines.some((l) => /^syscalls \(strace -c -f\), all\s+4\.02\s+6\.33$/.test(l)),
      table,
    );
    assert.ok(!table.includes('munmap'), table);
  });

  it('leaves the syscall rows out when strace was not available', function () {
    assert.ok(!formatPerRequest([row('proxy')]).includes('syscalls'));
  });
});
