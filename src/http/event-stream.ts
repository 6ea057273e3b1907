import type { ServerResponse } from 'node:http';
import type { EventSink } from '../inference';

/**
 * Server-sent events on an HTTP response, as Triton's generate_stream sends
 * them (`text/event-stream; charset=utf-8`, chunked). Each event is written
 * at once, never held back for a bigger chunk; `X-Accel-Buffering: no` asks
 * nginx-style proxies in front to do the same. A client that reads slowly
 * makes send() wait for the socket to drain, and the stream behind it waits
 * too, so memory stays bounded by what one event and the socket buffers hold.
 */
export function eventStream(res: ServerResponse, requestId: string): EventSink {
  return {
    open() {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-request-id': requestId,
      });
      res.flushHeaders();
    },
    send(event) {
      if (res.destroyed || res.writableEnded) return Promise.resolve();
      if (res.write(event)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    },
    close() {
      if (!res.writableEnded) res.end();
    },
  };
}
