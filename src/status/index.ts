export { collectStatus } from './status-snapshot';
export type {
  AdmissionStatus,
  CacheStatus,
  ErrorSummaryStatus,
  MatrixCell,
  ModelMatrix,
  ReplicaStatus,
  ServerHealth,
  ServerStatus,
  StatusSnapshot,
  StatusSources,
} from './status-snapshot';
export { escapeHtml, renderStatusPage } from './render-html';
export type { RenderOptions } from './render-html';
