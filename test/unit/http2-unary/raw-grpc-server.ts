import {
  createSecureServer,
  createServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';

/** What a test server does with one stream: its request headers and body are given. */
export type StreamHandler = (
  stream: ServerHttp2Stream,
  body: Buffer,
  session: Http2Session,
) => void;

export interface RawGrpcServer {
  address: string;
  /** Sessions (connections) accepted so far. */
  sessions(): number;
  /** Request headers of the last stream. */
  lastHeaders(): Record<string, unknown> | undefined;
  setHandler(handler: StreamHandler): void;
  close(): Promise<void>;
}

/** A gRPC length-prefixed message. */
export function grpcFrame(message: Buffer, flag = 0): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flag;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Answers with one message and the given status in trailers. */
export function reply(
  stream: ServerHttp2Stream,
  message: Buffer | undefined,
  status = 0,
  details = '',
): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => {
    const trailers: Record<string, string> = { 'grpc-status': String(status) };
    if (details) trailers['grpc-message'] = encodeURIComponent(details);
    stream.sendTrailers(trailers);
  });
  if (message) stream.write(grpcFrame(message));
  stream.end();
}

/** Echoes the request message back (the behaviour of an identity model at the byte level). */
export const echo: StreamHandler = (stream, body) => reply(stream, body.subarray(5));

/**
 * A bare HTTP/2 server on 127.0.0.1 that speaks just enough gRPC for a test
 * to script the server behaviours a client has to survive: GOAWAY, resets,
 * odd statuses, malformed frames.
 */
export async function startRawGrpcServer(
  handler: StreamHandler,
  options: { tls?: { key: Buffer; cert: Buffer }; port?: number } = {},
): Promise<RawGrpcServer> {
  const tls = options.tls;
  let current = handler;
  let sessions = 0;
  let lastHeaders: Record<string, unknown> | undefined;
  const server: Http2Server = tls
    ? createSecureServer({ ...tls, allowHTTP1: false })
    : createServer();
  const open = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions++;
    open.add(session);
    session.on('close', () => open.delete(session));
    session.on('error', () => undefined);
  });
  server.on('stream', (stream, headers) => {
    lastHeaders = { ...headers };
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (!stream.destroyed) current(stream, Buffer.concat(chunks), stream.session!);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    sessions: () => sessions,
    lastHeaders: () => lastHeaders,
    setHandler: (h) => {
      current = h;
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
