import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { ERROR_CODES, ProxyError, type ErrorCode } from '../../../src/errors';
import { grpcStatusOf } from '../../../src/grpc';

describe('gRPC status of domain errors', () => {
  it('maps every domain error code the proxy raises itself', () => {
    const expected: Record<ErrorCode, status> = {
      INVALID_REQUEST: status.INVALID_ARGUMENT,
      MODEL_NOT_FOUND: status.NOT_FOUND,
      NOT_FOUND: status.UNIMPLEMENTED,
      METHOD_NOT_ALLOWED: status.UNIMPLEMENTED,
      MODEL_NOT_READY: status.UNAVAILABLE,
      PAYLOAD_TOO_LARGE: status.RESOURCE_EXHAUSTED,
      UNAUTHENTICATED: status.UNAUTHENTICATED,
      FORBIDDEN: status.PERMISSION_DENIED,
      OVERLOADED: status.RESOURCE_EXHAUSTED,
      RATE_LIMITED: status.RESOURCE_EXHAUSTED,
      REQUEST_TIMEOUT: status.DEADLINE_EXCEEDED,
      UPSTREAM_UNAVAILABLE: status.UNAVAILABLE,
      UPSTREAM_TIMEOUT: status.DEADLINE_EXCEEDED,
      CLIENT_CLOSED: status.CANCELLED,
      UNSUPPORTED: status.UNIMPLEMENTED,
      PARTIAL_FAILURE: status.UNKNOWN,
      INTERNAL: status.INTERNAL,
    };
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      assert.equal(grpcStatusOf(new ProxyError(code, 'x')), expected[code], code);
    }
  });

  it("keeps Triton's own status when Triton judged the request", () => {
    const e = new ProxyError('INVALID_REQUEST', 'bad', { grpcCode: status.UNKNOWN });
    assert.equal(grpcStatusOf(e), status.UNKNOWN);
  });

  it("answers UNAVAILABLE for a server fault, whatever the last server's status", () => {
    const e = new ProxyError('UPSTREAM_UNAVAILABLE', 'gone', { grpcCode: status.CANCELLED });
    assert.equal(grpcStatusOf(e), status.UNAVAILABLE);
  });
});
