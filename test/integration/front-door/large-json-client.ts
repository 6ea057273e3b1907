import { Agent } from 'node:http';
import { postJson } from './post-json';

/**
 * The event-loop test's large-request client, run as its own process (forked
 * by event-loop.test.ts): uploading 64 MiB bodies and reading 64 MiB answers
 * costs this process hundreds of ms of GC and copying, which must not land on
 * the loop that times the small requests. It builds the body once, sends it
 * when told, drops the answers and reports statuses, sizes and times over IPC.
 */

/** What the test asks for. */
export type LargeClientCommand =
  /** One request whose answer is kept and compared with the body's data. */
  | { kind: 'echo' }
  /** `concurrency` senders, each sending `rounds` requests one after another. */
  | { kind: 'load'; concurrency: number; rounds: number };

export interface LargeResult {
  status: number;
  bytes: number;
  ms: number;
}

/** What this process answers. */
export type LargeClientReport =
  | { kind: 'ready' }
  | { kind: 'echo'; result: LargeResult; sameData: boolean }
  | { kind: 'load'; results: LargeResult[] }
  | { kind: 'error'; message: string };

const MiB = 1024 * 1024;

/** A KServe JSON body of `mib` MiB: one INT32 tensor whose text is built by Buffer.fill, not JSON.stringify. */
function largeJsonBody(mib: number): Buffer {
  const element = '1000000,';
  const head = Buffer.from('{"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,');
  const count = Math.floor((mib * MiB - 200) / element.length);
  const shape = Buffer.from(`${count}],"data":[`);
  const data = Buffer.alloc(count * element.length, element);
  // The last element has no comma.
  data[data.length - 1] = 0x30;
  const tail = Buffer.from(']}]}');
  return Buffer.concat([head, shape, data, tail]);
}

/** The text of the first `data` array in a JSON body. */
function dataOf(json: Buffer): Buffer {
  const at = json.indexOf('"data":[') + 8;
  return json.subarray(at, json.indexOf(']', at));
}

async function main(): Promise<void> {
  const [url, mib, maxSockets] = process.argv.slice(2);
  const body = largeJsonBody(Number(mib));
  const agent = new Agent({ keepAlive: true, maxSockets: Number(maxSockets) });
  const send = (report: LargeClientReport) => process.send!(report);

  process.on('message', (command: LargeClientCommand) => {
    const run = async (): Promise<LargeClientReport> => {
      if (command.kind === 'echo') {
        const { body: answer, ...result } = await postJson(agent, url!, body, true);
        return { kind: 'echo', result, sameData: dataOf(answer!).equals(dataOf(body)) };
      }
      const results: LargeResult[] = [];
      await Promise.all(
        Array.from({ length: command.concurrency }, async () => {
          for (let round = 0; round < command.rounds; round++) {
            results.push(await postJson(agent, url!, body, false));
          }
        }),
      );
      return { kind: 'load', results };
    };
    run().then(send, (err: Error) => send({ kind: 'error', message: err.message }));
  });
  // The parent closing the channel is the signal to go.
  process.on('disconnect', () => {
    agent.destroy();
    process.exit(0);
  });
  send({ kind: 'ready' });
}

void main();
