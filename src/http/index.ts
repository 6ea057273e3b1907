export { createApp, NORMALIZED_PATHS } from './app';
export type { AppDeps } from './app';
export { answerClientError } from './client-error';
export { inferListener, matchInferRoute } from './infer-listener';
export type { InferRoute } from './infer-listener';
export { readListenerTls, reloadListenerTls } from './tls';
export type { ListenerSecrets, ListenerTls } from './tls';
