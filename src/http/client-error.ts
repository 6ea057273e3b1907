import type { Duplex } from 'node:stream';

const ANSWERS: Record<string, [status: number, reason: string, message: string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'request headers not received in time'],
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'request headers too large'],
};

/**
 * Node's HTTP parser rejects some requests before any route sees them
 * (malformed framing, headers too large or too slow). Its default answer is
 * a bare status line; clients of this API expect the JSON error body, so the
 * answer is written here, and the connection is closed since its framing can
 * no longer be trusted.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, message] = ANSWERS[err.code ?? ''] ?? [
    400,
    'Bad Request',
    `malformed HTTP request (${err.code ?? 'parse error'})`,
  ];
  const code = status === 408 ? 'REQUEST_TIMEOUT' : 'INVALID_REQUEST';
  const body = JSON.stringify({ error: message, code });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
