import { Agent } from 'node:http';
import { postJson } from './post-json';

/**
 * The event-loop test's small-request client, run as its own process (forked
 * by event-loop.test.ts) so that what it times is the proxy: by the time the
 * event-loop test runs inside `npm test`, the mocha process has a heap of a
 * thousand tests behind it, and its own GC pauses would land in the small
 * requests' latencies. It sends one small request at a time, 5 ms apart,
 * from `start` until `stop`, and reports each one's status and time.
 */

/** What the test asks for. */
export type SmallClientCommand = { kind: 'start' } | { kind: 'stop' };

/** What this process answers. */
export type SmallClientReport =
  | { kind: 'ready' }
  | { kind: 'started' }
  | { kind: 'stopped'; statuses: number[]; latencies: number[] }
  | { kind: 'error'; message: string };

function main(): void {
  const [url, body] = process.argv.slice(2);
  const payload = Buffer.from(body!);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const send = (report: SmallClientReport) => process.send!(report);
  let running: Promise<void> | undefined;
  let stopping = false;
  let failure: string | undefined;
  const statuses: number[] = [];
  const latencies: number[] = [];

  const loop = async () => {
    while (!stopping) {
      const answer = await postJson(agent, url!, payload, false);
      statuses.push(answer.status);
      latencies.push(answer.ms);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  process.on('message', (command: SmallClientCommand) => {
    if (command.kind === 'start') {
      stopping = false;
      statuses.length = 0;
      latencies.length = 0;
      failure = undefined;
      running = loop().catch((err: Error) => {
        failure = err.message;
      });
      send({ kind: 'started' });
      return;
    }
    stopping = true;
    void running?.then(() =>
      send(
        failure === undefined
          ? { kind: 'stopped', statuses, latencies }
          : { kind: 'error', message: failure },
      ),
    );
  });
  process.on('disconnect', () => {
    agent.destroy();
    process.exit(0);
  });
  send({ kind: 'ready' });
}

main();
