export { AdmissionController } from './admission-controller';
export type { Permit, AdmissionStats, ModelAdmissionStats } from './admission-controller';
export type {
  AdmissionOptions,
  AdmissionPriority,
  AdmissionHooks,
  AdmissionRejectReason,
  ModelLimits,
} from './admission-options';
export { ClientGoneError, isClientGoneError } from './client-gone-error';
