export {
  ERROR_CODES,
  ProxyError,
  isProxyError,
  invalidRequest,
  payloadTooLarge,
  toProxyError,
} from './domain-error';
export type { ErrorCode, ProxyErrorOptions } from './domain-error';
