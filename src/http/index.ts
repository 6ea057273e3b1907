export { createApp, NORMALIZED_PATHS } from './app';
export type { AppDeps } from './app';
export { answerClientError } from './client-error';
