export { runHealthCheck, formatHealthTable } from './health-check';
export type { HealthRow } from './health-check';
